"""core.policy.triage: decisions, policy evaluation, and the tuner checked against brute force."""

import functools
import itertools
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest

from core.labels.skill import HumanErrorRates
from core.policy.combined_bound import ClassBound
from core.policy.relative import side_confidence
from core.policy.triage import (Decision, TriagePolicy, TriageWarning, TunedTriagePolicy, decide, evaluate_policy,
                         validate_thresholds)


HUMANS = {
    "prior": HumanErrorRates.prior(),
    "perfect": HumanErrorRates.perfect(),
    "measured": HumanErrorRates.from_known_answers([1] * 40 + [0] * 3 + [0] * 95 + [1] * 5, [1] * 43 + [0] * 100),
}


@functools.lru_cache(maxsize=None)
def _upper(k: int, n: int, confidence: float) -> float:
    """One-sided upper bound, computed independently with scipy's binomtest."""
    return binomtest(k, n).proportion_ci(confidence_level=2 * confidence - 1, method="exact").high


def _bound(counted: int, unreviewed: int, n: int, rate, confidence: float) -> float:
    """One side's error bound, the brute force's pass criterion.

    With humans known to be perfect it is the plain Clopper–Pearson bound, from scipy's binomtest
    (independent of the code under test). With human error it is the project's own
    ``ClassBound``: a choice (Bonferroni over the human rate and the reference set) with no
    independent value to recompute, so the brute force checks the search over threshold pairs
    here, and the bound itself is checked for what it promises, its coverage, by
    ``test_bounds_cover_the_true_rates_by_simulation`` below (and ``mixed_error_upper`` in
    test_metrics).
    """
    if rate.certain_zero:
        return _upper(counted, n, confidence)
    return 1 - ClassBound(n, rate, confidence).lower(counted, unreviewed)


def _brute_force(p, y, human, sens, spec, conf, humans):
    """Best automatic count over every pair of candidate thresholds, by direct counting."""
    values = np.unique(p)
    lows = [None, *values]
    highs = [*values, None]
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    best = -1
    for t_low, t_high in itertools.product(lows, highs):
        if t_low is not None and t_high is not None and not t_low < t_high:
            continue
        auto_flowing = p <= t_low if t_low is not None else np.zeros(len(p), bool)
        auto_stalled = p >= t_high if t_high is not None else np.zeros(len(p), bool)
        routed = ~auto_flowing & ~auto_stalled
        answer = np.where(auto_flowing, 0, np.where(auto_stalled, 1, human))  # NaN: routed, no answer
        misses = int(((y == 1) & (answer == 0)).sum())
        false_alarms = int(((y == 0) & (answer == 1)).sum())
        open_pos = int((routed & np.isnan(human) & (y == 1)).sum())
        open_neg = int((routed & np.isnan(human) & (y == 0)).sum())
        if (_bound(misses, open_pos, n_pos, humans.miss, conf) <= 1 - sens
                and _bound(false_alarms, open_neg, n_neg, humans.false_alarm, conf) <= 1 - spec):
            best = max(best, int((~routed).sum()))
    return best


def _case(seed: int, n: int, with_humans: bool):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rng.uniform(0.3, 0.6)).astype(int)
    p = np.round(np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1), 1)  # rounding makes ties
    human = np.full(n, np.nan)
    if with_humans:
        reviewed = rng.random(n) < 0.6
        human[reviewed] = np.where(rng.random(reviewed.sum()) < 0.85, y[reviewed], 1 - y[reviewed])
    return p, y, human


def _targets(seed: int):
    rng = np.random.default_rng(100 + seed)
    return rng.uniform(0.6, 0.85), rng.uniform(0.6, 0.85), rng.choice([0.5, 0.8, 0.9])


@pytest.mark.parametrize("seed", range(36))
def test_tuner_matches_brute_force(seed):
    humans = list(HUMANS.values())[seed % 3]
    p, y, human = _case(seed, n=40 + seed, with_humans=seed % 2 == 1)
    sens, spec, conf = _targets(seed)
    level = side_confidence(conf)  # each side's bound, so both hold together at conf
    expected = _brute_force(p, y, human, sens, spec, level, humans)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TriageWarning)
        tuned = TunedTriagePolicy(sensitivity=sens, specificity=spec, confidence=conf, human_errors=humans).fit(
            p, y, human)
    report = tuned.report_
    assert 1 - report.sensitivity_lower == pytest.approx(
        _bound(report.misses, report.unreviewed_stalled, int(y.sum()), humans.miss, level))
    assert 1 - report.specificity_lower == pytest.approx(
        _bound(report.false_alarms, report.unreviewed_flowing, int(len(y) - y.sum()), humans.false_alarm, level))
    if expected < 0:  # out of reach: a proposal that misses a target, never reported as meeting them
        assert not tuned.feasible_
        assert report.sensitivity_lower < sens or report.specificity_lower < spec
        return
    assert tuned.feasible_
    assert report.n - report.n_human == expected
    assert _bound(report.misses, report.unreviewed_stalled, int(y.sum()), humans.miss, level) <= 1 - sens


def test_brute_force_cases_are_not_trivial():
    """The random cases above include automation, and infeasible ones (so they can fail)."""
    outcomes = set()
    for seed in range(36):
        p, y, human = _case(seed, n=40 + seed, with_humans=seed % 2 == 1)
        sens, spec, conf = _targets(seed)
        best = _brute_force(p, y, human, sens, spec, side_confidence(conf), list(HUMANS.values())[seed % 3])
        outcomes.add("none" if best < 0 else "all" if best == len(p) else "some")
    assert {"none", "some"} <= outcomes


@pytest.mark.parametrize("t_low,t_high", [(None, None), (0.35, 0.65)], ids=["all-routed", "band"])
def test_bounds_cover_the_true_rates_by_simulation(t_low, t_high):
    """Both sides' bounds hold together at least ``confidence`` of the time, human error included.

    A known population (40 % stalled; stalled scores ~ U(0.3, 1), flowing ~ U(0, 0.7)) gives each
    policy's true automatic error and routed shares; each trial draws a reference set of 300 and
    the humans' true miss and false-alarm rates from the stated prior (the rates' Beta
    distributions, as their bounds read them). Routing everything makes the human part the whole
    bound: counting a routed stack at the human rate's mean instead of its upper bound covers
    about half the time there, and fails."""
    rng = np.random.default_rng(0)
    humans, confidence, n, trials = HUMANS["prior"], 0.8, 300, 1000
    low, high = (0.0 if t_low is None else t_low), (1.0 if t_high is None else t_high)
    auto_miss, routed_stalled = max(low - 0.3, 0) / 0.7, (high - max(low, 0.3)) / 0.7
    auto_false_alarm, routed_flowing = max(0.7 - high, 0) / 0.7, (min(high, 0.7) - low) / 0.7
    covered = 0
    for _ in range(trials):
        y = (rng.random(n) < 0.4).astype(int)
        p = np.where(y == 1, rng.uniform(0.3, 1, n), rng.uniform(0, 0.7, n))
        miss = auto_miss + routed_stalled * rng.beta(humans.miss.a, humans.miss.b)
        false_alarm = auto_false_alarm + routed_flowing * rng.beta(humans.false_alarm.a, humans.false_alarm.b)
        report = evaluate_policy(p, y, t_low, t_high, human_errors=humans, confidence=confidence)
        covered += report.sensitivity_lower <= 1 - miss and report.specificity_lower <= 1 - false_alarm
    assert covered / trials >= confidence - 3 * np.sqrt(confidence * (1 - confidence) / trials)


def _off(value: float) -> float | None:
    return None if np.isnan(value) else value


@pytest.mark.parametrize("humans", HUMANS.values(), ids=HUMANS.keys())
def test_curve_rows_agree_with_evaluate_policy(humans):
    p, y, human = _case(7, n=80, with_humans=True)
    tuned = TunedTriagePolicy(sensitivity=0.7, specificity=0.7, confidence=0.8, human_errors=humans).fit(p, y, human)
    assert set(tuned.curve_["sweep"]) == {"t_low", "t_high"}
    for row in tuned.curve_.sample(10, random_state=0).itertuples():
        report = evaluate_policy(p, y, _off(row.t_low), _off(row.t_high), human=human, human_errors=humans,
                                 confidence=0.8)
        assert (report.misses, report.false_alarms) == (row.misses, row.false_alarms)
        assert (report.unreviewed_stalled, report.unreviewed_flowing) == (row.unreviewed_stalled,
                                                                          row.unreviewed_flowing)
        assert report.n - report.n_human == row.n_auto
        assert report.sensitivity_lower == pytest.approx(row.sensitivity_lower)
        assert report.specificity == pytest.approx(row.specificity)


def test_clean_separation_is_fully_automatic():
    y = np.array([0] * 800 + [1] * 800)
    p = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 1600)
    tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95).fit(p, y)
    assert tuned.report_.auto_share == 1.0 and tuned.report_.misses == 0
    assert tuned.t_low_ < tuned.t_high_
    assert (tuned.predict(p) == y).all()


def _good_humans(n_known: int = 2000) -> HumanErrorRates:
    """Humans measured on many known answers: 1 % misses, 1 % false alarms."""
    truth = np.array([1, 0] * (n_known // 2))
    answer = truth.copy()
    answer[:n_known // 50] = 1 - answer[:n_known // 50]
    return HumanErrorRates.from_known_answers(answer, truth)


def test_humans_take_the_overlap():
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 3000), 0, 1)
    tuned = TunedTriagePolicy(sensitivity=0.95, specificity=0.95, human_errors=_good_humans()).fit(p, y)
    decisions = tuned.predict(p)
    assert 0.3 < tuned.report_.auto_share < 1.0
    assert tuned.report_.sensitivity_lower >= 0.95 and tuned.report_.specificity_lower >= 0.95
    assert (p[decisions == Decision.HUMAN] > tuned.t_low_).all()


def test_default_is_the_stated_prior_not_perfection():
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 3000), 0, 1)
    with pytest.warns(TriageWarning, match="no policy meets the targets.*prior"):
        tuned = TunedTriagePolicy(sensitivity=0.9, specificity=0.9).fit(p, y)
    assert tuned.human_errors_ == HumanErrorRates.prior()
    assert tuned.report_.human_basis.startswith("prior") and tuned.report_.human_miss_upper > 0.1
    report = evaluate_policy(p, y, 0.2, 0.6)
    assert report.human_basis == HumanErrorRates.prior().basis and report.unreviewed_stalled > 0


@pytest.mark.parametrize("humans", [HUMANS["prior"], HUMANS["measured"], _good_humans()],
                         ids=["prior", "measured", "good"])
def test_human_error_bounds_are_at_least_as_strict(humans):
    p, y, human = _case(11, n=400, with_humans=False)
    for t_low, t_high in [(None, None), (0.1, 0.6), (0.3, None), (None, 0.8), (0.0, 1.0)]:
        perfect = evaluate_policy(p, y, t_low, t_high, human_errors=HumanErrorRates.perfect())
        counted = evaluate_policy(p, y, t_low, t_high, human_errors=humans)
        assert counted.sensitivity_lower <= perfect.sensitivity_lower
        assert counted.specificity_lower <= perfect.specificity_lower
        assert counted.sensitivity <= perfect.sensitivity and counted.specificity <= perfect.specificity


def test_certainly_perfect_humans_give_the_plain_clopper_pearson_bounds():
    p, y, human = _case(12, n=300, with_humans=True)
    report = evaluate_policy(p, y, 0.2, 0.7, human=human, human_errors=HumanErrorRates.perfect(), confidence=0.9)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    assert report.sensitivity_lower == pytest.approx(1 - _upper(report.misses, n_pos, 0.95))  # 0.9 split in two
    assert report.specificity_lower == pytest.approx(1 - _upper(report.false_alarms, n_neg, 0.95))
    assert report.human_miss_upper == 0 and report.human_basis == "humans assumed perfect"


def test_the_old_assumption_overpromises_where_humans_err():
    """Routing stalls to humans who miss some: the old tuner's policy fails the target once human
    errors count; the new tuner's meets it by leaving fewer errors to the model (automating less)."""
    rng = np.random.default_rng(5)
    y = (rng.random(4000) < 0.3).astype(int)
    p = np.clip(0.4 * y + rng.normal(0.3, 0.12, 4000), 0, 1)
    humans = _good_humans()
    perfect = TunedTriagePolicy(sensitivity=0.97, specificity=0.97, human_errors=HumanErrorRates.perfect()).fit(p, y)
    counted = TunedTriagePolicy(sensitivity=0.97, specificity=0.97, human_errors=humans).fit(p, y)
    assert perfect.report_.auto_share < 1 and perfect.report_.sensitivity_lower >= 0.97
    assert evaluate_policy(p, y, perfect.t_low_, perfect.t_high_, human_errors=humans).sensitivity_lower < 0.97
    assert counted.feasible_ and counted.report_.sensitivity_lower >= 0.97
    assert counted.report_.auto_share < perfect.report_.auto_share


def test_recorded_human_answers_are_counted_directly():
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.3).astype(int)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.12, 2000), 0, 1)
    careless = np.where(rng.random(2000) < 0.1, 1 - y, y).astype(float)
    report = evaluate_policy(p, y, 0.2, 0.6, human=careless)
    routed = (p > 0.2) & (p < 0.6)
    assert report.unreviewed_stalled == report.unreviewed_flowing == 0
    assert report.misses == int(((y == 1) & ((p <= 0.2) | (routed & (careless == 0)))).sum())


def _dominated(tuned: TunedTriagePolicy) -> bool:
    """Whether some pair of the tuner's table is at least as automatic with both bounds at least as
    high, one of the three strictly better, than the chosen policy."""
    r, pairs = tuned.report_, tuned.pairs_
    at_least = ((pairs["auto_share"] >= r.auto_share - 1e-12) & (pairs["sensitivity_lower"] >= r.sensitivity_lower - 1e-12)
                & (pairs["specificity_lower"] >= r.specificity_lower - 1e-12))
    better = ((pairs["auto_share"] > r.auto_share + 1e-12) | (pairs["sensitivity_lower"] > r.sensitivity_lower + 1e-12)
              | (pairs["specificity_lower"] > r.specificity_lower + 1e-12))
    return bool((at_least & better).any())


def test_too_few_stalls_warns_and_proposes_the_closest_policy_in_reach():
    y = np.array([1] * 50 + [0] * 2000)
    p = np.where(y == 1, 0.95, 0.05)
    with pytest.warns(TriageWarning) as record:
        tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95, confidence=0.95).fit(p, y)
    messages = " | ".join(str(w.message) for w in record)
    assert "only 50 stalled" in messages and "at least 368" in messages and "closest in reach" in messages
    assert "prior" in messages
    assert not tuned.feasible_ and tuned.report_.sensitivity_lower < 0.99
    routed = evaluate_policy(p, y, None, None, confidence=0.95)
    assert min(tuned.report_.sensitivity_lower - 0.99, tuned.report_.specificity_lower - 0.95) >= \
        min(routed.sensitivity_lower - 0.99, routed.specificity_lower - 0.95)
    assert not _dominated(tuned)


def test_out_of_reach_proposal_beats_routing_everything():
    """The issue's case: 2,000 stacks, 400 stalls, AUC about 0.95, the prior: routing every stack
    leaves a worse sensitivity bound than deciding most of them."""
    rng = np.random.default_rng(3)
    y = np.array([1] * 400 + [0] * 1600)
    p = 1 / (1 + np.exp(-rng.normal(np.where(y == 1, 1.2, -1.2), 1.0)))
    with pytest.warns(TriageWarning, match="closest in reach"):
        tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95).fit(p, y)
    routed = evaluate_policy(p, y, None, None)
    assert tuned.report_.auto_share > 0.5
    assert tuned.report_.sensitivity_lower > routed.sensitivity_lower + 0.1
    assert not _dominated(tuned)


def test_one_sided_policy_has_a_none_side():
    """Flowing stacks over all scores (some at 1.0), stalls only high: only the flowing side can decide."""
    rng = np.random.default_rng(8)
    y = np.array([0] * 3000 + [1] * 600)
    p = np.where(y == 1, rng.uniform(0.5, 1.0, len(y)), rng.uniform(0.0, 1.0, len(y))).round(3)
    p[:20] = 1.0
    strict = TunedTriagePolicy(sensitivity=0.9, specificity=0.998, human_errors=HumanErrorRates.perfect()).fit(p, y)
    assert strict.feasible_ and strict.t_low_ is not None and strict.t_high_ is None
    assert strict.report_.n_auto_stalled == 0 and strict.report_.t_high is None
    assert (strict.predict(np.array([1.0])) == Decision.HUMAN).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"sensitivity": 1.0}, "sensitivity must lie"),
    ({"confidence": 0.0}, "confidence must lie"),
])
def test_invalid_targets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TunedTriagePolicy(**kwargs).fit([0.1, 0.9], [0, 1])


@pytest.mark.parametrize("p,y,match", [
    ([0.1, np.nan], [0, 1], "NaN"),
    ([0.1, 1.2], [0, 1], r"must lie in \[0, 1\]"),
    ([0.1, 0.2], [0, 1, 1], "labels of shape"),
    ([0.1, 0.2], [0, 2], "only 0"),
    ([0.1, 0.2], [0, 0], "both classes"),
])
def test_bad_inputs(p, y, match):
    with pytest.raises(ValueError, match=match):
        TunedTriagePolicy().fit(p, y)


def test_fixed_policy():
    policy = TriagePolicy(t_low=0.2, t_high=0.8)
    with pytest.raises(RuntimeError, match="not fitted"):
        policy.predict([0.5])
    assert policy.fit() is policy
    assert policy.predict([0.2, 0.5, 0.8]).tolist() == [Decision.FLOWING, Decision.HUMAN, Decision.STALLED]
    with pytest.raises(ValueError, match="below t_high"):
        TriagePolicy(t_low=0.8, t_high=0.2).fit()


@pytest.mark.parametrize("t_low,t_high,expected", [
    (None, None, [2, 2, 2]), (None, 0.9, [2, 2, 1]), (0.0, None, [0, 2, 2]), (0.0, 1.0, [0, 2, 1]),
])
def test_none_switches_a_side_off(t_low, t_high, expected):
    assert decide([0.0, 0.5, 1.0], t_low, t_high).tolist() == expected
    assert TriagePolicy(t_low=t_low, t_high=t_high).fit().predict([0.0, 0.5, 1.0]).tolist() == expected


@pytest.mark.parametrize("t_low,t_high,match", [
    (0.5, 0.5, "below t_high"), (0.6, 0.4, "below t_high"), (-0.1, None, "t_low must lie in"),
    (None, 1.5, "t_high must lie in"), (float("nan"), 0.5, "t_low must lie in"), (None, float("inf"), "t_high must"),
    ("low", None, "t_low must be a number"),
])
def test_validate_thresholds_is_the_one_rule(t_low, t_high, match):
    with pytest.raises(ValueError, match=match):
        validate_thresholds(t_low, t_high)
    with pytest.raises(ValueError, match=match):
        decide([0.5], t_low, t_high)


def test_validate_thresholds_returns_floats_or_none():
    assert validate_thresholds(np.float32(0.25), None) == (0.25, None)
    assert validate_thresholds(None, None) == (None, None)
    assert validate_thresholds(0, 1) == (0.0, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("humans", [HumanErrorRates.perfect(), _good_humans(), HumanErrorRates.prior()],
                         ids=["perfect", "measured", "prior"])
def test_large_reference_set_is_fast(humans):
    import time
    rng = np.random.default_rng(0)
    y = (rng.random(500_000) < 0.01).astype(int)
    p = np.clip(0.6 * y + rng.normal(0.2, 0.1, 500_000), 0, 1)
    start = time.process_time()  # CPU time: the shared test machines' load must not decide the outcome
    tuned = TunedTriagePolicy(sensitivity=0.95, specificity=0.95, curve_points=500, human_errors=humans).fit(p, y)
    assert time.process_time() - start < 5
    assert len(tuned.curve_) <= 2 * 500 + 1
    chosen = tuned.curve_[(tuned.curve_.t_low == tuned.t_low_) & (tuned.curve_.t_high == tuned.t_high_)]
    assert len(chosen) >= 1 and chosen["feasible"].all()
    assert tuned.curve_.loc[tuned.curve_.feasible, "n_auto"].max() == tuned.report_.n - tuned.report_.n_human
