"""Label-quality metrics: confusion counts, sensitivity/specificity, MCC, Clopper–Pearson bounds.

Stalls are rare, so a point estimate such as "1 % missed" from a few dozen stalls is mostly
noise; the exact (Clopper–Pearson) binomial bounds here say how bad a rate could plausibly be.
:func:`mixed_error_upper` extends them to error rates where part of the errors is counted and
part is only known through an error rate's bound (stacks answered by humans of known skill).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# scipy.stats and sklearn.metrics are imported in the functions that use them: importing them
# costs about 2.5 CPU-seconds, and db.models imports this module (through core.gate), so every
# command that opens the database (ingest included) would pay it for nothing.

Side = Literal["two-sided", "upper", "lower"]


def binary_array(values: np.ndarray | list, name: str, *, hint: str = "") -> np.ndarray:
    """``values`` as a 1-D ``int8`` array of 0 (flowing) and 1 (stalled); otherwise a ``ValueError``
    naming ``name`` (and ending with ``hint``, e.g. what to do about it)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name}: expected only 0 (flowing) and 1 (stalled), got {np.unique(array)[:5]}{hint}")
    return array.astype(np.int8)


def confusion_counts(y_true: np.ndarray | list, y_pred: np.ndarray | list) -> tuple[int, int, int, int]:
    """Return ``(tp, fn, tn, fp)`` of binary predictions against reference labels (1 = stalled)."""
    y_true, y_pred = binary_array(y_true, "y_true"), binary_array(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return int(tp), int(fn), int(tn), int(fp)


def _rate(k: int, n: int) -> float:
    return k / n if n else float("nan")


def sensitivity_specificity(y_true: np.ndarray | list, y_pred: np.ndarray | list) -> tuple[float, float]:
    """Sensitivity (stalls found) and specificity (flowing kept); NaN where a class is absent.

    Examples
    --------
    >>> sensitivity_specificity([1, 1, 0, 0], [1, 0, 0, 0])
    (0.5, 1.0)
    """
    tp, fn, tn, fp = confusion_counts(y_true, y_pred)
    return _rate(tp, tp + fn), _rate(tn, tn + fp)


def mcc(y_true: np.ndarray | list, y_pred: np.ndarray | list) -> float:
    """Matthews correlation coefficient (the competition's metric); 0 when it is undefined."""
    y_true, y_pred = binary_array(y_true, "y_true"), binary_array(y_pred, "y_pred")
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(y_true, y_pred))


def clopper_pearson(k: np.ndarray | int, n: np.ndarray | int, *, confidence: float = 0.95,
                    side: Side = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper–Pearson) confidence bounds of a binomial rate ``k / n``.

    Parameters
    ----------
    k, n
        Successes and trials (scalars or arrays that broadcast); ``0 <= k <= n``, ``n >= 1``.
    confidence
        Coverage of the interval, in (0, 1).
    side
        ``"two-sided"`` splits ``1 - confidence`` over both tails (as
        ``scipy.stats.binomtest(...).proportion_ci(method="exact")``); ``"upper"`` gives a
        one-sided bound ``[0, high]`` and ``"lower"`` a one-sided ``[low, 1]``.

    Returns
    -------
    (low, high)
        Float arrays (0-d for scalar input).

    Examples
    --------
    >>> low, high = clopper_pearson(0, 299, confidence=0.95, side="upper")
    >>> bool(high < 0.01)
    True
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if side not in ("two-sided", "upper", "lower"):
        raise ValueError(f"side must be 'two-sided', 'upper' or 'lower', got {side!r}")
    k, n = np.broadcast_arrays(np.asarray(k, dtype=float), np.asarray(n, dtype=float))
    if (n < 1).any() or (k < 0).any() or (k > n).any():
        raise ValueError("Clopper–Pearson bounds need 0 <= k <= n and n >= 1")
    alpha = 1.0 - confidence
    tail = alpha / 2 if side == "two-sided" else alpha
    from scipy.stats import beta

    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - tail, k + 1, n - k), 1.0)
    if side == "upper":
        low = np.zeros_like(low)
    elif side == "lower":
        high = np.ones_like(high)
    return low, high


def max_errors_within(n: int, max_rate: float, *, confidence: float = 0.95) -> int:
    """Largest error count ``k`` whose one-sided upper Clopper–Pearson bound of ``k / n`` is at
    most ``max_rate``; ``-1`` when even zero errors in ``n`` trials cannot show that.

    The upper bound grows with ``k``, so a binary search over ``0..n`` finds it exactly.

    Examples
    --------
    >>> max_errors_within(298, 0.01), max_errors_within(299, 0.01)
    (-1, 0)
    """
    if n < 1:
        return -1

    def fits(k: int) -> bool:
        return float(clopper_pearson(k, n, confidence=confidence, side="upper")[1]) <= max_rate

    if not fits(0):
        return -1
    low, high = 0, n
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def zero_failure_size(target: float, confidence: float) -> int:
    """Fewest cases that can show a rate of at least ``target`` at ``confidence`` (one-sided
    Clopper–Pearson) when none of them fails: the smallest ``n`` with ``target ** n <= 1 - confidence``.

    Examples
    --------
    >>> zero_failure_size(0.99, 0.95), zero_failure_size(0.99, 0.975)
    (299, 368)
    >>> max_errors_within(367, 0.01, confidence=0.975), max_errors_within(368, 0.01, confidence=0.975)
    (-1, 0)
    """
    if not 0 < target < 1 or not 0 < confidence < 1:
        raise ValueError(f"target and confidence must lie in (0, 1), got {target} and {confidence}")
    n = int(np.ceil(np.log(1 - confidence) / np.log(target)))
    while max_errors_within(n, 1 - target, confidence=confidence) < 0:  # rounding at the boundary
        n += 1
    return n


def _weight(weight: float) -> float:
    weight = float(weight)
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    return weight


def mixed_error_upper(counted: np.ndarray | int, uncounted: np.ndarray | int, n: int, weight: float, *,
                      confidence: float = 0.95) -> np.ndarray:
    """Upper confidence bound of the error rate ``a + weight * r`` of a labelling where some cases'
    errors are counted and others' are only known to happen at a rate of at most ``weight``.

    Of ``n`` cases, ``counted`` are counted errors (rate ``a``) and ``uncounted`` are cases whose
    outcome was not observed (rate ``r``), each an error with probability at most ``weight``
    (e.g. the upper bound of a human error rate, from independent evidence). Writing
    ``a + w r = (1 - w) a + w (a + r)`` and bounding ``a`` and ``a + r`` by one-sided
    Clopper–Pearson bounds at tails ``alpha (1 - w)`` and ``alpha w`` (Bonferroni, ``alpha =
    1 - confidence``) gives a bound that holds with probability at least ``confidence`` for any
    ``a``, ``r`` and fixed ``w``. It equals the plain Clopper–Pearson bound of ``counted / n``
    when ``weight`` is 0 and of ``(counted + uncounted) / n`` when it is 1, and grows with both
    counts, which keeps the tuner's search monotone.

    Parameters
    ----------
    counted, uncounted
        Counts per candidate (arrays that broadcast, or scalars); ``counted + uncounted <= n``.
    n
        Cases (e.g. stalled stacks in the reference set), ``n >= 1``.
    weight
        Upper bound of the error rate of the uncounted cases, in [0, 1].
    confidence
        Coverage of the bound, in (0, 1).

    Returns
    -------
    numpy.ndarray
        The bound per candidate (0-d for scalar input).

    Examples
    --------
    >>> float(mixed_error_upper(0, 200, 299, 0.0)) == float(clopper_pearson(0, 299, side="upper")[1])
    True
    >>> 0.04 < float(mixed_error_upper(0, 200, 299, 0.05)) < 0.05
    True
    """
    weight = _weight(weight)
    counted, uncounted = np.broadcast_arrays(np.asarray(counted, dtype=float), np.asarray(uncounted, dtype=float))
    if (uncounted < 0).any() or (counted + uncounted > n).any():
        raise ValueError("mixed_error_upper needs uncounted >= 0 and counted + uncounted <= n")
    alpha = 1.0 - confidence
    bound = np.zeros(counted.shape)
    if weight < 1:
        bound += (1 - weight) * _upper_at_tail(counted, n, alpha * (1 - weight))
    if weight > 0:
        bound += weight * _upper_at_tail(counted + uncounted, n, alpha * weight)
    return bound


def _upper_at_tail(k: np.ndarray, n: int, tail: float) -> np.ndarray:
    """One-sided upper Clopper–Pearson bound with ``tail`` left over; 1 where the tail is too small
    to tell from zero in floating point (a bound at confidence 1 is the whole interval)."""
    if 1 - tail >= 1:
        return np.ones(np.shape(k))
    return clopper_pearson(k, n, confidence=1 - tail, side="upper")[1]


def mixed_error_budget(n: int, weight: float, max_rate: float, *, confidence: float = 0.95) -> np.ndarray:
    """For each count of counted errors ``c = 0, 1, ...``, the largest ``counted + uncounted``
    whose :func:`mixed_error_upper` stays within ``max_rate``; ``-1`` where none does.

    The generalisation of :func:`max_errors_within` the tuner needs: a policy's
    ``(counted, counted + uncounted)`` passes exactly when ``counted + uncounted <= budget[counted]``
    (``counted`` beyond the array's end never passes). The budget never grows with ``c``.
    Costs ``O(c_max)`` distribution calls, where ``c_max`` is the last passing count.

    Examples
    --------
    >>> budget = mixed_error_budget(1000, 0.0, 0.01, confidence=0.95)
    >>> len(budget) - 1 == max_errors_within(1000, 0.01) and bool((budget == 1000).all())
    True
    """
    weight = _weight(weight)
    alpha = 1.0 - confidence
    tail_counted, tail_all = alpha * (1 - weight), alpha * weight
    if weight == 0:  # the plain bound: every count up to the largest passing one, whatever the rest
        return np.full(max_errors_within(n, max_rate, confidence=confidence) + 1, n, dtype=np.int64)
    if weight < 1 and 1 - tail_counted < 1:
        c_max = max_errors_within(n, max_rate / (1 - weight), confidence=1 - tail_counted)
        counted = np.arange(c_max + 1, dtype=float)
        first = (1 - weight) * clopper_pearson(counted, n, confidence=1 - tail_counted, side="upper")[1]
    elif weight < 1:  # the counted part's tail is lost in rounding: its bound is the whole interval
        counted, first = np.arange(n + 1, dtype=float), np.full(n + 1, 1 - weight)
    else:
        counted, first = np.arange(n + 1, dtype=float), np.zeros(n + 1)
    # (counted + uncounted) = s passes when its upper bound u(s) <= cap; u(s) <= cap exactly when
    # P(Binomial(n, cap) <= s) <= tail (Clopper–Pearson duality), so binom.ppf finds the largest s.
    cap = (max_rate - first) / weight
    budget = np.where(cap >= 1, n, -1).astype(np.int64)
    some = (cap >= 0) & (cap < 1)
    if some.any():
        from scipy.stats import binom

        quantile = binom.ppf(tail_all, n, cap[some]).astype(np.int64)
        found = np.full(len(quantile), -1, dtype=np.int64)
        for shift in (1, 0, -1, -2):  # the passing s sits at the quantile or just below; margin for rounding
            s = quantile + shift
            passes = (s >= 0) & (s < n) & (binom.cdf(s, n, cap[some]) <= tail_all)
            found = np.where((found == -1) & passes, s, found)
        budget[some] = found
    return np.where(budget >= counted, budget, -1)
