"""core.triage: decisions, policy evaluation, and the tuner checked against brute force."""

import functools
import itertools
import warnings

import numpy as np
import pytest
from scipy.stats import binomtest

from core.triage import Decision, TriagePolicy, TriageWarning, TunedTriagePolicy, decide, evaluate_policy


@functools.lru_cache(maxsize=None)
def _upper(k: int, n: int, confidence: float) -> float:
    """One-sided upper bound, computed independently with scipy's binomtest."""
    return binomtest(k, n).proportion_ci(confidence_level=2 * confidence - 1, method="exact").high


def _brute_force(p, y, human, sens, spec, conf):
    """Best automatic count over every pair of candidate thresholds, by direct counting."""
    values = np.unique(p)
    lows = [-np.inf, *values]
    highs = [*values, np.inf]
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    answer = np.where(np.isnan(human), y, human)
    best = -1
    for t_low, t_high in itertools.product(lows, highs):
        if not t_low < t_high:
            continue
        combined = np.where(p <= t_low, 0, np.where(p >= t_high, 1, answer))
        misses = int(((y == 1) & (combined == 0)).sum())
        false_alarms = int(((y == 0) & (combined == 1)).sum())
        if _upper(misses, n_pos, conf) <= 1 - sens and _upper(false_alarms, n_neg, conf) <= 1 - spec:
            best = max(best, int(((p <= t_low) | (p >= t_high)).sum()))
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


@pytest.mark.parametrize("seed", range(24))
def test_tuner_matches_brute_force(seed):
    with_humans = seed % 2 == 1
    p, y, human = _case(seed, n=40 + seed, with_humans=with_humans)
    rng = np.random.default_rng(100 + seed)
    sens, spec, conf = rng.uniform(0.6, 0.85), rng.uniform(0.6, 0.85), rng.choice([0.5, 0.8, 0.9])
    expected = _brute_force(p, y, human, sens, spec, conf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TriageWarning)
        tuned = TunedTriagePolicy(sensitivity=sens, specificity=spec, confidence=conf).fit(p, y, human)
    if expected < 0:
        assert not tuned.feasible_ and tuned.report_.n_human == len(p)
        return
    assert tuned.feasible_
    report = tuned.report_
    assert report.n - report.n_human == expected
    assert _upper(report.misses, int(y.sum()), conf) <= 1 - sens
    assert _upper(report.false_alarms, int(len(y) - y.sum()), conf) <= 1 - spec


def test_brute_force_cases_are_not_trivial():
    """The random cases above include both automation and infeasible cases (so they can fail)."""
    outcomes = set()
    for seed in range(24):
        p, y, human = _case(seed, n=40 + seed, with_humans=seed % 2 == 1)
        rng = np.random.default_rng(100 + seed)
        sens, spec, conf = rng.uniform(0.6, 0.85), rng.uniform(0.6, 0.85), rng.choice([0.5, 0.8, 0.9])
        best = _brute_force(p, y, human, sens, spec, conf)
        outcomes.add("none" if best < 0 else "all" if best == len(p) else "some")
    assert "some" in outcomes


def test_curve_rows_agree_with_evaluate_policy():
    p, y, human = _case(7, n=80, with_humans=True)
    tuned = TunedTriagePolicy(sensitivity=0.7, specificity=0.7, confidence=0.8).fit(p, y, human)
    assert set(tuned.curve_["sweep"]) == {"t_low", "t_high"}
    for row in tuned.curve_.sample(10, random_state=0).itertuples():
        report = evaluate_policy(p, y, row.t_low, row.t_high, human=human, confidence=0.8)
        assert (report.misses, report.false_alarms) == (row.misses, row.false_alarms)
        assert report.n - report.n_human == row.n_auto
        assert report.sensitivity_lower == pytest.approx(row.sensitivity_lower)


def test_clean_separation_is_fully_automatic():
    y = np.array([0] * 400 + [1] * 400)
    p = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.05, 800)
    tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95).fit(p, y)
    assert tuned.report_.auto_share == 1.0 and tuned.report_.misses == 0
    assert tuned.t_low_ < tuned.t_high_
    assert (tuned.predict(p) == y).all()


def test_humans_take_the_overlap():
    rng = np.random.default_rng(3)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, 3000), 0, 1)
    tuned = TunedTriagePolicy(sensitivity=0.98, specificity=0.95).fit(p, y)
    decisions = tuned.predict(p)
    assert 0.3 < tuned.report_.auto_share < 1.0
    assert tuned.report_.sensitivity_lower >= 0.98 and tuned.report_.specificity_lower >= 0.95
    assert (p[decisions == Decision.HUMAN] > tuned.t_low_).all()


def test_too_few_stalls_warns_and_routes_everything_to_humans():
    y = np.array([1] * 50 + [0] * 2000)
    p = np.where(y == 1, 0.95, 0.05)
    with pytest.warns(TriageWarning) as record:
        tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95, confidence=0.95).fit(p, y)
    messages = " | ".join(str(w.message) for w in record)
    assert "only 50 stalled" in messages and "at least 299" in messages and "every stack to humans" in messages
    assert not tuned.feasible_ and tuned.report_.n_human == len(y)
    assert tuned.t_low_ == -np.inf and tuned.t_high_ == np.inf


def test_human_errors_count_against_the_policy():
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.3).astype(int)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.12, 2000), 0, 1)
    careless = np.where(rng.random(2000) < 0.1, 1 - y, y).astype(float)
    perfect = TunedTriagePolicy(sensitivity=0.9, specificity=0.9).fit(p, y)
    with_errors = TunedTriagePolicy(sensitivity=0.9, specificity=0.9).fit(p, y, careless)
    assert with_errors.report_.misses + with_errors.report_.false_alarms > 0
    assert with_errors.report_.auto_share >= perfect.report_.auto_share


@pytest.mark.parametrize("kwargs,match", [
    ({"sensitivity": 1.0}, "sensitivity must lie"),
    ({"confidence": 0.0}, "confidence must lie"),
])
def test_invalid_targets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TunedTriagePolicy(**kwargs).fit([0.1, 0.9], [0, 1])


@pytest.mark.parametrize("p,y,match", [
    ([0.1, np.nan], [0, 1], "NaN"),
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


def test_decide_infinite_thresholds_route_all_to_humans():
    assert (decide([0.0, 0.5, 1.0], -np.inf, np.inf) == Decision.HUMAN).all()


@pytest.mark.slow
def test_large_reference_set_is_fast():
    import time
    rng = np.random.default_rng(0)
    y = (rng.random(500_000) < 0.01).astype(int)
    p = np.clip(0.6 * y + rng.normal(0.2, 0.1, 500_000), 0, 1)
    start = time.perf_counter()
    tuned = TunedTriagePolicy(sensitivity=0.95, specificity=0.95, curve_points=500).fit(p, y)
    assert time.perf_counter() - start < 5
    assert len(tuned.curve_) <= 2 * 500 + 1
    chosen = tuned.curve_[(tuned.curve_.t_low == tuned.t_low_) & (tuned.curve_.t_high == tuned.t_high_)]
    assert len(chosen) >= 1 and chosen["feasible"].all()
    assert tuned.curve_.loc[tuned.curve_.feasible, "n_auto"].max() == tuned.report_.n - tuned.report_.n_human
