"""core.policy.label_shift on Beta-distributed scores whose true shift is known (reference 20 %, new 5 %)."""

import doctest

import numpy as np
import pytest

import core.policy.label_shift
from core.metrics import mcc
from core.policy.label_shift import ShareEstimate, estimate_stall_share, threshold_for_share
from training.evaluation import best_mcc_threshold

STALLED, FLOWING = (4.0, 2.0), (1.5, 5.0)  # Beta shapes: AUC ≈ 0.96, about the realistic profile's


def draw(rng: np.random.Generator, n: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` scores with exactly ``round(n * share)`` stalls, and their labels."""
    y = np.r_[np.ones(round(n * share), int), np.zeros(n - round(n * share), int)]
    return np.where(y == 1, rng.beta(*STALLED, n), rng.beta(*FLOWING, n)), y


def test_doctests():
    assert doctest.testmod(core.policy.label_shift).failed == 0


@pytest.mark.slow
def test_interval_covers_the_true_share_in_most_seeds():
    """Nominal 95 %: over 50 seeds a correct interval misses more than 7 times with probability
    0.3 % (binomial), so ``>= 0.85`` rarely fails by chance. A biased estimator fails it (the mean
    of calibrated posteriors without EM covered 0 of 50); redrawing only the new stacks, not the
    reference, still covered 0.90 here, so this bound does not tell that choice apart."""
    covered, errors = [], []
    for seed in range(50):
        rng = np.random.default_rng(seed)
        ref_p, ref_y = draw(rng, 1000, 0.20)
        new_p, _ = draw(rng, 1000, 0.05)
        est = estimate_stall_share(ref_p, ref_y, new_p, n_boot=100, random_state=seed)
        covered.append(est.low <= 0.05 <= est.high)
        errors.append(est.share - 0.05)
    assert np.mean(covered) >= 0.85
    assert np.median(np.abs(errors)) < 0.01  # 50 stalls among 1,000 new stacks: sampling sd alone ≈ 0.007
    assert np.max(np.abs(errors)) < 0.035


def test_no_shift_is_estimated_as_none():
    rng = np.random.default_rng(3)
    ref_p, ref_y = draw(rng, 2000, 0.20)
    new_p, _ = draw(rng, 2000, 0.20)
    est = estimate_stall_share(ref_p, ref_y, new_p, n_boot=50)
    assert est.low <= 0.20 <= est.high and abs(est.share - 0.20) < 0.02
    assert est == ShareEstimate(est.share, est.low, est.high, 0.2, 2000, est.method)


def test_estimate_is_reproducible_and_narrows_with_confidence():
    rng = np.random.default_rng(4)
    ref_p, ref_y = draw(rng, 1000, 0.20)
    new_p, _ = draw(rng, 1000, 0.05)
    wide = estimate_stall_share(ref_p, ref_y, new_p, n_boot=100, random_state=1)
    assert wide == estimate_stall_share(ref_p, ref_y, new_p, n_boot=100, random_state=1)
    narrow = estimate_stall_share(ref_p, ref_y, new_p, n_boot=100, random_state=1, confidence=0.5)
    assert wide.low < narrow.low <= narrow.share <= narrow.high < wide.high


@pytest.mark.parametrize("seed", range(5))
def test_threshold_at_the_reference_share_is_the_runs_out_of_fold_threshold(seed):
    rng = np.random.default_rng(seed)
    ref_p, ref_y = draw(rng, 500, 0.20)
    ref_p = np.round(ref_p, 2)  # ties, as a calibrated or quantised model gives
    assert threshold_for_share(ref_p, ref_y, ref_y.mean()) == best_mcc_threshold(ref_y, ref_p)[0]


def test_threshold_for_the_new_share_scores_new_stacks_better():
    rng = np.random.default_rng(5)
    ref_p, ref_y = draw(rng, 4000, 0.20)
    new_p, new_y = draw(rng, 20000, 0.05)
    at_reference = threshold_for_share(ref_p, ref_y, 0.20)
    at_new = threshold_for_share(ref_p, ref_y, 0.05)
    best = best_mcc_threshold(new_y, new_p)[0]
    assert at_new > at_reference  # fewer stalls: a stricter cut
    assert abs(at_new - best) < abs(at_reference - best)
    gain = mcc(new_y, new_p >= at_new) - mcc(new_y, new_p >= at_reference)
    assert gain > 0.02


@pytest.mark.parametrize("scores, labels, new, match", [
    ([0.1, 0.9], [0, 0], [0.5], "both stalled and flowing"),
    ([0.1, 0.9], [0, 2], [0.5], "0/1"),
    ([0.1, 0.9], [0, 1], [], "new_scores"),
    ([0.1, 1.5], [0, 1], [0.5], "reference_scores"),
    ([0.1, np.nan], [0, 1], [0.5], "reference_scores"),
])
def test_bad_inputs_are_named(scores, labels, new, match):
    with pytest.raises(ValueError, match=match):
        estimate_stall_share(scores, labels, new, n_boot=0)


def test_share_outside_zero_one_is_rejected():
    with pytest.raises(ValueError, match="share"):
        threshold_for_share([0.1, 0.9], [0, 1], 1.0)
