"""core.metrics against scikit-learn, scipy's binomtest and hand-counted cases."""

import numpy as np
import pytest
from scipy.stats import binomtest

from core.metrics import (clopper_pearson, confusion_counts, max_errors_within, mcc,
                          mixed_error_budget, mixed_error_upper, sensitivity_specificity)


def test_counts_and_rates_by_hand():
    y_true = [1, 1, 1, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 0, 0, 0, 0, 1, 0]
    assert confusion_counts(y_true, y_pred) == (2, 1, 4, 1)
    sens, spec = sensitivity_specificity(y_true, y_pred)
    assert sens == pytest.approx(2 / 3) and spec == pytest.approx(4 / 5)
    expected = (2 * 4 - 1 * 1) / np.sqrt(3 * 3 * 5 * 5)  # (tp tn - fp fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))
    assert mcc(y_true, y_pred) == pytest.approx(expected)


def test_missing_class_gives_nan_not_an_error():
    sens, spec = sensitivity_specificity([0, 0], [0, 1])
    assert np.isnan(sens) and spec == 0.5


@pytest.mark.parametrize("bad", [[0, 2], [0.5, 1]])
def test_non_binary_labels_are_rejected(bad):
    with pytest.raises(ValueError, match="only 0"):
        confusion_counts(bad, [0, 1])


def test_length_mismatch_is_rejected():
    with pytest.raises(ValueError, match="3 labels"):
        confusion_counts([0, 1, 0], [0, 1])


@pytest.mark.parametrize("k,n", [(0, 1), (0, 50), (3, 50), (50, 50), (17, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_two_sided_matches_scipy_binomtest(k, n, confidence):
    low, high = clopper_pearson(k, n, confidence=confidence)
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    assert float(low) == pytest.approx(ref.low, abs=1e-12)
    assert float(high) == pytest.approx(ref.high, abs=1e-12)


@pytest.mark.parametrize("k,n", [(0, 10), (2, 40), (40, 40)])
def test_one_sided_bound_is_two_sided_at_doubled_tail(k, n):
    _, high = clopper_pearson(k, n, confidence=0.95, side="upper")
    ref = binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact")
    assert float(high) == pytest.approx(ref.high, abs=1e-12)
    low, _ = clopper_pearson(k, n, confidence=0.95, side="lower")
    assert float(low) == pytest.approx(ref.low, abs=1e-12)


def test_zero_errors_upper_bound_is_rule_of_three_exact():
    _, high = clopper_pearson(0, 100, confidence=0.95, side="upper")
    assert float(high) == pytest.approx(1 - 0.05 ** (1 / 100))


def test_vectorised_bounds():
    low, high = clopper_pearson(np.array([0, 1, 2]), 10, side="upper")
    assert high.shape == (3,) and (np.diff(high) > 0).all() and (low == 0).all()


@pytest.mark.parametrize("k,n", [(-1, 5), (6, 5), (0, 0)])
def test_invalid_counts(k, n):
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(k, n)


def test_invalid_confidence():
    with pytest.raises(ValueError, match="confidence"):
        clopper_pearson(1, 5, confidence=1.0)


@pytest.mark.parametrize("n,rate", [(10, 0.3), (299, 0.01), (298, 0.01), (5000, 0.02), (1, 0.9)])
def test_max_errors_within_is_the_largest_passing_count(n, rate):
    k = max_errors_within(n, rate, confidence=0.95)
    highs = clopper_pearson(np.arange(n + 1), n, confidence=0.95, side="upper")[1]
    passing = np.flatnonzero(highs <= rate)
    assert k == (passing.max() if len(passing) else -1)


@pytest.mark.parametrize("n,weight,rate,confidence", [
    (50, 0.1, 0.2, 0.9), (300, 0.05, 0.05, 0.95), (40, 0.3, 0.5, 0.8), (120, 0.0, 0.05, 0.95), (60, 1.0, 0.5, 0.9),
])
def test_mixed_error_budget_is_the_largest_passing_total(n, weight, rate, confidence):
    budget = mixed_error_budget(n, weight, rate, confidence=confidence)
    assert (np.diff(budget) <= 0).all()
    for counted in range(n + 1):
        totals = np.arange(counted, n + 1)
        passing = totals[mixed_error_upper(counted, totals - counted, n, weight, confidence=confidence) <= rate]
        expected = int(passing.max()) if len(passing) else -1
        assert (budget[counted] if counted < len(budget) else -1) == expected


def test_mixed_error_upper_endpoints_are_plain_clopper_pearson():
    counted, uncounted = np.array([0, 3, 10]), np.array([40, 5, 0])
    plain = clopper_pearson(counted, 200, confidence=0.9, side="upper")[1]
    assert mixed_error_upper(counted, uncounted, 200, 0.0, confidence=0.9) == pytest.approx(plain)
    everything = clopper_pearson(counted + uncounted, 200, confidence=0.9, side="upper")[1]
    assert mixed_error_upper(counted, uncounted, 200, 1.0, confidence=0.9) == pytest.approx(everything)
    between = mixed_error_upper(counted, uncounted, 200, 0.2, confidence=0.9)
    assert (between >= plain).all()  # the Bonferroni split may cost more than either endpoint


def test_mixed_error_upper_covers_by_simulation():
    """a + w r with a = 0.01, r = 0.5, human error exactly w = 0.04: the bound holds >= 95 % of the time."""
    rng = np.random.default_rng(0)
    n, a, r, w = 400, 0.01, 0.5, 0.04
    counts = rng.multinomial(n, [a, r, 1 - a - r], size=4000)
    bound = mixed_error_upper(counts[:, 0], counts[:, 1], n, w, confidence=0.95)
    assert (bound >= a + r * w).mean() >= 0.95


@pytest.mark.parametrize("kwargs,match", [
    ({"counted": 1, "uncounted": 5, "n": 4, "weight": 0.1}, "counted \\+ uncounted <= n"),
    ({"counted": 1, "uncounted": 1, "n": 4, "weight": 1.5}, "weight must lie"),
])
def test_mixed_error_upper_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mixed_error_upper(**kwargs)


@pytest.mark.parametrize("weight", [0.0, 1e-300, 1e-17, 1e-16, 1e-15, 1e-9, 0.3, 1 - 1e-9, 1 - 1e-16, 1.0])
def test_the_mixed_bound_is_defined_for_every_weight_from_0_to_1(weight):
    """Tiny or near-one human error bounds once crashed the Clopper–Pearson call (confidence 1.0)."""
    from core.metrics import mixed_error_budget, mixed_error_upper

    bound = mixed_error_upper(np.arange(5), 10, 100, weight)
    assert np.isfinite(bound).all() and ((0 <= bound) & (bound <= 1)).all()
    assert (np.diff(bound) >= 0).all()  # still grows with the counted errors
    budget = mixed_error_budget(100, weight, 0.05)
    assert len(budget) >= 1 and (np.diff(budget) <= 0).all()
