"""core.policy.relative: the fixed-sequence choice against an independent oracle (scipy's binomtest), its
coverage on distributions whose true risk is known, and the re-reading at another stall share."""

import numpy as np
import pytest
from scipy.stats import beta as beta_dist, binomtest

from core.metrics import mixed_error_upper
from core.policy.relative import GRID, relative_thresholds, side_confidence, side_test, uncross, worst_case_at_share
from core.policy.triage import TriageWarning, TunedTriagePolicy, evaluate_policy


def _oracle_low(scores: np.ndarray, y: np.ndarray, max_rate: float, delta: float) -> float | None:
    """Walk the grid upwards; reject while binomtest says 'fewer than max_rate changed' at delta."""
    stalls = scores[y == 1]
    chosen = None
    for t in GRID:
        k = int((stalls <= t).sum())
        if binomtest(k, len(stalls), max_rate, alternative="less").pvalue > delta:
            break
        chosen = float(t)
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_the_low_side_matches_the_binomial_test_walk(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 900))
    y = (rng.random(n) < 0.5).astype(int)
    scores = np.clip(np.round(0.45 * y + rng.normal(0.3, 0.15, n), 2), 0, 1)
    max_rate = float(rng.choice([0.02, 0.05, 0.1]))
    test = side_test(scores, y, side="low", max_rate=max_rate, confidence=0.95)
    assert test.threshold == _oracle_low(scores, y, max_rate, 0.05)
    assert test.threshold is not None  # the cases decide something, so the walk was exercised


def test_the_high_side_is_the_low_side_of_the_mirrored_problem():
    rng = np.random.default_rng(9)
    y = (rng.random(800) < 0.3).astype(int)
    scores = np.clip(0.4 * y + rng.normal(0.3, 0.15, 800), 0, 1)
    high = side_test(scores, y, side="high", max_rate=0.05, confidence=0.95)
    flowing = scores[y == 0]
    k = int((flowing >= high.threshold).sum())
    assert binomtest(k, len(flowing), 0.05, alternative="less").pvalue <= 0.05
    step_down = GRID[np.searchsorted(GRID, high.threshold) - 1]
    k_next = int((flowing >= step_down).sum())
    assert binomtest(k_next, len(flowing), 0.05, alternative="less").pvalue > 0.05


def test_the_chosen_threshold_keeps_its_promise_on_new_stacks():
    """Stall scores ~ Beta(5, 2): the true share of stalls under t is the Beta CDF. Over 400
    references the chosen t_low's true risk exceeds the target in at most 2.5 % of them (the side's
    share of 5 %), allowing three Monte-Carlo standard errors."""
    rng = np.random.default_rng(0)
    failures, trials = 0, 400
    for _ in range(trials):
        n_pos, n_neg = 600, 1400
        y = np.array([1] * n_pos + [0] * n_neg)
        scores = np.concatenate([rng.beta(5, 2, n_pos), rng.beta(2, 5, n_neg)])
        t_low, _ = relative_thresholds(scores, y, sensitivity=0.99, specificity=0.95, confidence=0.95)
        assert t_low is not None
        failures += beta_dist.cdf(t_low, 5, 2) > 0.01
    limit = 0.025 + 3 * np.sqrt(0.025 * 0.975 / trials)
    assert failures / trials <= limit
    assert failures > 0  # the test is tight enough to see the procedure use its risk budget


def test_a_side_that_decides_nothing_changes_nothing():
    y = np.array([1] * 50 + [0] * 500)
    scores = np.where(y == 1, 0.9, 0.1)
    with pytest.warns(TriageWarning, match="at least 368 are needed"):
        tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95, promise="relative").fit(scores, y)
    assert tuned.t_low_ is None and tuned.report_.sensitivity_lower == 1.0  # 50 stalls cannot show 0.99
    assert tuned.t_high_ is not None and tuned.feasible_
    report = evaluate_policy(scores, y, None, None, promise="relative")
    assert (report.sensitivity_lower, report.specificity_lower) == (1.0, 1.0)


def test_relative_bounds_are_the_plain_clopper_pearson_bounds_at_half_the_risk():
    rng = np.random.default_rng(4)
    y = (rng.random(1000) < 0.3).astype(int)
    scores = np.clip(0.4 * y + rng.normal(0.3, 0.15, 1000), 0, 1)
    report = evaluate_policy(scores, y, 0.2, 0.7, confidence=0.9, promise="relative")
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    expected = 1 - binomtest(report.misses, n_pos).proportion_ci(confidence_level=2 * side_confidence(0.9) - 1,
                                                                  method="exact").high
    assert report.sensitivity_lower == pytest.approx(expected)
    assert report.specificity_lower == pytest.approx(1 - float(mixed_error_upper(report.false_alarms, 0, n_neg, 0.0,
                                                                                 confidence=0.95)))
    assert report.promise == "relative" and report.human_miss_upper == 0


def test_uncross_keeps_both_sides_safe():
    assert uncross(0.4, 0.6) == (0.4, 0.6)
    t_low, t_high = uncross(0.6, 0.4)
    assert t_low == 0.6 and t_high > 0.6 and t_high in GRID
    assert uncross(None, 0.2) == (None, 0.2) and uncross(1.0, 0.5) == (1.0, None)


def test_worst_case_at_another_share():
    assert worst_case_at_share(0.0, 0.2, 0.05) == 0.0
    assert worst_case_at_share(0.01, 0.2, 0.2) == pytest.approx(0.01)
    # 20 % -> 5 %: a changed "stalled" answer that is a human false alarm weighs 1.1875, a kept true stall 0.25
    assert worst_case_at_share(0.01, 0.2, 0.05) == pytest.approx(0.01 * 1.1875 / (0.01 * 1.1875 + 0.99 * 0.25))
    assert worst_case_at_share(0.01, 0.2, 0.05) > worst_case_at_share(0.01, 0.2, 0.1) > 0.01
    with pytest.raises(ValueError, match="new_share"):
        worst_case_at_share(0.01, 0.2, 0.0)


def test_the_grid_is_built_on_first_use_and_is_the_fixed_grid():
    from core.policy import relative
    from core.policy.relative import threshold_grid

    assert relative.GRID is GRID  # one array, whichever way it is reached
    np.testing.assert_array_equal(GRID, threshold_grid())
    assert GRID[0] == 0 and GRID[-1] == 1 and np.all(np.diff(GRID) > 0)
    with pytest.raises(AttributeError):
        relative.NOT_A_NAME  # noqa: B018
