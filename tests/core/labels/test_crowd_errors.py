"""core.labels.crowd_errors on crowds drawn like the generator's (errors growing with difficulty) and by hand."""

import doctest

import numpy as np
import pandas as pd
import pytest

import core.labels.crowd_errors
from core.labels.crowd_errors import COLUMNS, FILTERS, crowd_margin, find_crowd_errors
from core.synth.profiles import crowd


def simulated(seed: int = 0, n: int = 2000) -> tuple[pd.DataFrame, np.ndarray]:
    """Stacks with a crowd vote per stack (``core.synth.profiles.crowd``) and model scores that know
    only the truth (Beta(6, 2) for stalls, Beta(2, 6) for flowing); also which crowd answers are wrong."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.2
    votes = [crowd(rng, bool(t), level) for t, level in zip(truth, rng.uniform(0, 0.6, n))]
    score = np.array([v[0] for v in votes])
    label = (score >= 0.5).astype(int)
    stacks = pd.DataFrame({"filename": [f"{i}.mp4" for i in range(n)], "label": label, "crowd_score": score,
                           "tier1": [v[1] for v in votes],
                           "probability": np.where(truth, rng.beta(6, 2, n), rng.beta(2, 6, n))})
    return stacks, label != truth


def precision_recall(flagged: pd.DataFrame, wrong: np.ndarray) -> tuple[float, float]:
    hits = wrong[flagged["filename"].str.removesuffix(".mp4").astype(int).to_numpy()]
    return float(hits.mean()), float(hits.sum() / wrong.sum())


def test_doctests():
    assert doctest.testmod(core.labels.crowd_errors).failed == 0


@pytest.mark.parametrize("filter_by, min_precision, min_recall", [
    ("predicted_neq_given", 0.55, 0.85),   # measured 0.68 / 0.94
    ("prune_by_noise_rate", 0.8, 0.7),     # measured 0.91 / 0.83
    ("low_self_confidence", 0.9, 0.5),     # measured 0.98 / 0.65
])
def test_flags_mostly_real_crowd_errors(filter_by, min_precision, min_recall):
    """3.6 % of the simulated answers are wrong, 11 % of the low-margin ones: every rule beats both."""
    stacks, wrong = simulated()
    flagged = find_crowd_errors(stacks, filter_by=filter_by)
    precision, recall = precision_recall(flagged, wrong)
    assert precision >= min_precision and recall >= min_recall
    assert list(flagged.columns) == COLUMNS
    assert (flagged["margin"] <= 0.6).all()
    assert flagged["label_quality"].is_monotonic_increasing
    assert (flagged["label_quality"] < 0.5).all()  # the model prefers the other answer on every flagged stack


def test_stricter_rules_flag_subsets():
    stacks, _ = simulated()
    flagged = [set(find_crowd_errors(stacks, filter_by=f)["filename"]) for f in FILTERS]
    assert flagged[2] <= flagged[1] <= flagged[0]


def test_the_margin_rule_trades_little_recall_for_precision():
    stacks, wrong = simulated()
    strict = precision_recall(find_crowd_errors(stacks, max_margin=0.6), wrong)
    any_margin = precision_recall(find_crowd_errors(stacks, max_margin=1.0), wrong)
    assert strict[0] > any_margin[0] + 0.2 and strict[1] >= any_margin[1] - 0.05


def test_unanimous_votes_stay_and_missing_scores_are_eligible():
    stacks, _ = simulated()
    suspects = find_crowd_errors(stacks, max_margin=1.0)["filename"]
    one = stacks["filename"] == suspects.iloc[0]
    unanimous = stacks.assign(crowd_score=np.where(one, stacks["label"].astype(float), stacks["crowd_score"]))
    assert suspects.iloc[0] not in set(find_crowd_errors(unanimous)["filename"])
    unknown = stacks.assign(crowd_score=np.where(one, np.nan, stacks["crowd_score"]))
    row = find_crowd_errors(unknown).set_index("filename").loc[suspects.iloc[0]]
    assert np.isnan(row["margin"]) and "no crowd score" in row["reason"]


def test_reason_names_the_vote_the_tier_and_the_model():
    stacks = pd.DataFrame({"filename": ["a.mp4"], "label": [1], "crowd_score": [0.55], "tier1": [True],
                           "probability": [0.04]})
    row = pd.Series({"label": 1, "crowd_score": 0.55, "tier1": True, "probability": 0.04, "label_quality": 0.04})
    assert core.labels.crowd_errors._reason(row) == ("crowd said stalled (55% voted stalled); tier 1; "
                                               "the model gives stalled 4% (P(stalled) 0.04)")
    assert find_crowd_errors(stacks).empty  # one class: nothing to learn the noise from


def test_margin_of_votes():
    assert crowd_margin(pd.Series([0.5, 0.2, 1.0, None])).tolist()[:3] == pytest.approx([0.0, 0.6, 1.0])


def test_unlabelled_rows_are_ignored_and_bad_ones_named():
    stacks, _ = simulated(n=300)
    with_unlabelled = pd.concat([stacks, stacks.head(5).assign(label=np.nan, filename=lambda f: "u" + f["filename"])])
    assert find_crowd_errors(with_unlabelled).equals(find_crowd_errors(stacks))
    with pytest.raises(ValueError, match="lack columns"):
        find_crowd_errors(stacks.drop(columns="tier1"))
    with pytest.raises(ValueError, match="probability must lie"):
        find_crowd_errors(stacks.assign(probability=1.5))
    with pytest.raises(ValueError, match="filter_by must be one of"):
        find_crowd_errors(stacks, filter_by="both")
