"""core.labels.skill: reviewer skill from known answers, Dawid–Skene labels, human error rates."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from core.labels.skill import (PRIOR_SENSITIVITY, PRIOR_SPECIFICITY, DawidSkene, ErrorRate, HumanErrorRates, ReviewerSkill,
                        out_of_fold_labels)


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_skill_intervals_cover_reviewers_drawn_from_the_prior_at_their_nominal_level(confidence):
    """Drawn from the prior, a reviewer's true rate falls in its equal-tailed credible interval with
    probability ``confidence`` exactly, whatever the number of known answers (here 1–80, so the
    prior matters). The observed coverage must match within three Monte-Carlo standard errors: a
    wrong posterior (counts swapped, prior ignored) or intervals too narrow or too wide fail.
    (At fixed true rates a credible interval has no such guarantee, e.g. ≈ 0.90 at 0.99.)"""
    rng = np.random.default_rng(0)
    n_reviewers = 2000
    sens, spec = rng.beta(*PRIOR_SENSITIVITY, n_reviewers), rng.beta(*PRIOR_SPECIFICITY, n_reviewers)
    reviewer = np.repeat(np.arange(n_reviewers), rng.integers(1, 81, n_reviewers))
    truth = (rng.random(len(reviewer)) < 0.3).astype(int)
    right = rng.random(len(reviewer)) < np.where(truth == 1, sens[reviewer], spec[reviewer])
    reviews = pd.DataFrame({"reviewer": reviewer, "truth": truth, "answer": np.where(right, truth, 1 - truth)})
    table = ReviewerSkill(confidence=confidence).fit(reviews).table().set_index("reviewer").sort_index()
    assert table.index.tolist() == list(range(n_reviewers))
    covered = np.concatenate([(table.sensitivity_low <= sens) & (sens <= table.sensitivity_high),
                              (table.specificity_low <= spec) & (spec <= table.specificity_high)])
    trials = len(covered)
    monte_carlo_error = 3 * np.sqrt(confidence * (1 - confidence) / trials)
    assert abs(covered.mean() - confidence) <= monte_carlo_error, (covered.mean(), confidence, trials)


def test_skill_table_columns_and_counts():
    reviews = pd.DataFrame({"reviewer": ["a", "a", "a", "b"], "answer": [1, 0, 0, 1], "truth": [1, 1, 0, 0]})
    table = ReviewerSkill().fit(reviews).table().set_index("reviewer")
    assert list(table.columns) == ["n_known_stalled", "n_known_flowing", "sensitivity_mean", "sensitivity_low",
                                   "sensitivity_high", "specificity_mean", "specificity_low", "specificity_high"]
    assert table.loc["a", ["n_known_stalled", "n_known_flowing"]].tolist() == [2, 1]
    a, b = PRIOR_SENSITIVITY
    assert table.loc["a", "sensitivity_mean"] == pytest.approx((a + 1) / (a + b + 2))
    assert table.loc["b", "sensitivity_mean"] == pytest.approx(a / (a + b))  # no known stalls: the prior
    pa, pb = PRIOR_SPECIFICITY
    assert table.loc["b", "specificity_high"] == pytest.approx(beta.ppf(0.975, pa, pb + 1))


@pytest.mark.parametrize("reviews,match", [
    (pd.DataFrame({"reviewer": ["a"], "answer": [1]}), "missing column"),
    (pd.DataFrame({"reviewer": ["a"], "answer": [0.5], "truth": [1]}), "drop unsure"),
])
def test_skill_rejects_bad_reviews(reviews, match):
    with pytest.raises(ValueError, match=match):
        ReviewerSkill().fit(reviews)


def _crowd(rng, n_stacks: int, skills: dict[str, tuple[float, float]], prevalence: float = 0.3):
    truth = (rng.random(n_stacks) < prevalence).astype(int)
    rows = []
    for reviewer, (sens, spec) in skills.items():
        right = rng.random(n_stacks) < np.where(truth == 1, sens, spec)
        rows.append(pd.DataFrame({"stack": np.arange(n_stacks), "reviewer": reviewer,
                                  "answer": np.where(right, truth, 1 - truth)}))
    return pd.Series(truth, index=np.arange(n_stacks)), pd.concat(rows, ignore_index=True)


def test_dawid_skene_beats_majority_with_one_expert_and_two_careless_reviewers():
    rng = np.random.default_rng(0)
    truth, reviews = _crowd(rng, 2000, {"expert": (0.98, 0.98), "careless1": (0.65, 0.7), "careless2": (0.7, 0.65)})
    known = truth.sample(200, random_state=0)
    model = DawidSkene().fit(reviews, known)
    unknown = ~truth.index.isin(known.index)
    majority = (reviews.groupby("stack")["answer"].mean() > 0.5).astype(int)
    ds_accuracy = (model.labels_[unknown] == truth[unknown]).mean()
    majority_accuracy = (majority[unknown] == truth[unknown]).mean()
    assert ds_accuracy > majority_accuracy + 0.1
    assert model.skill_.loc["expert", "sensitivity"] > 0.9 > model.skill_.loc["careless1", "sensitivity"]
    assert (model.proba_[known.index] == known).all()  # known answers are clamped
    assert (model.predict(reviews)[unknown] == model.labels_[unknown]).mean() > 0.99


def test_dawid_skene_on_known_answers_only_equals_reviewer_skill():
    rng = np.random.default_rng(1)
    truth, reviews = _crowd(rng, 300, {"a": (0.9, 0.95), "b": (0.8, 0.9)})
    model = DawidSkene().fit(reviews, truth)
    table = ReviewerSkill().fit(reviews.assign(truth=truth[reviews["stack"]].to_numpy())).table().set_index("reviewer")
    assert model.skill_["sensitivity"].to_numpy() == pytest.approx(table["sensitivity_mean"].to_numpy())
    assert model.skill_["specificity"].to_numpy() == pytest.approx(table["specificity_mean"].to_numpy())


def test_human_error_rates_from_known_answers():
    truth = np.array([1] * 100 + [0] * 300)
    answer = truth.copy()
    answer[:5] = 0      # 5 misses
    answer[100:103] = 1  # 3 false alarms
    rates = HumanErrorRates.from_known_answers(answer, truth, reviewers=["a", "b"] * 200)
    prior = HumanErrorRates.prior()
    assert rates.miss == ErrorRate(prior.miss.a + 5, prior.miss.b + 95)
    assert rates.false_alarm == ErrorRate(prior.false_alarm.a + 3, prior.false_alarm.b + 297)
    assert rates.basis.startswith("400 known answers by 2 reviewers (100 stalled, 300 flowing)")
    assert rates.miss.upper(0.95) > rates.miss.mean > 0.04


def test_prior_and_perfect():
    prior = HumanErrorRates.prior()
    assert "no known-answer" in prior.basis and prior.miss.mean == pytest.approx(0.1)
    perfect = HumanErrorRates.perfect()
    assert perfect.miss.certain_zero and perfect.miss.upper(0.99) == 0 and perfect.false_alarm.mean == 0
    assert set(prior.as_dict()) == {"basis", "miss_a", "miss_b", "false_alarm_a", "false_alarm_b"}
    with pytest.raises(ValueError, match="b > 0"):
        ErrorRate(1.0, 0.0)


def test_out_of_fold_labels_never_use_the_stacks_own_truth():
    rng = np.random.default_rng(3)
    truth, reviews = _crowd(rng, 400, {"a": (0.95, 0.95), "b": (0.9, 0.9), "c": (0.85, 0.95)})
    reviews.loc[reviews["stack"] < 5, "answer"] = 1 - truth[reviews.loc[reviews["stack"] < 5, "stack"]].to_numpy()
    labels = out_of_fold_labels(reviews, truth, folds=4)
    assert list(labels.index) == list(truth.index)
    unanimous = reviews.groupby("stack")["answer"].agg(["min", "max"])
    unanimous_wrong = (unanimous["min"] == unanimous["max"]) & (unanimous["min"] != truth)
    assert unanimous_wrong.any()
    assert (labels[unanimous_wrong] == unanimous.loc[unanimous_wrong, "min"]).all()  # the humans' answer, not the truth
    assert (labels == truth).mean() > 0.9
    with pytest.raises(ValueError, match="fewer than folds"):
        out_of_fold_labels(reviews, truth.iloc[:3], folds=5)


def test_dawid_skene_without_known_answers_and_with_a_new_reviewer():
    rng = np.random.default_rng(4)
    truth, reviews = _crowd(rng, 1500, {"expert": (0.97, 0.97), "careless1": (0.7, 0.7), "careless2": (0.7, 0.7)})
    model = DawidSkene().fit(reviews)
    majority = (reviews.groupby("stack")["answer"].mean() > 0.5).astype(int)
    assert (model.labels_ == truth).mean() > (majority == truth).mean()
    newcomer = pd.DataFrame({"stack": [0, 0], "reviewer": ["expert", "newcomer"], "answer": [1, 0]})
    proba = model.predict_proba(newcomer)
    assert proba.loc[0] > 0.5  # the expert outweighs a reviewer known only through the prior
