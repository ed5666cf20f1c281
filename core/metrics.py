"""Label-quality metrics: confusion counts, sensitivity/specificity, MCC, Clopper–Pearson bounds.

Stalls are rare, so a point estimate such as "1 % missed" from a few dozen stalls is mostly
noise; the exact (Clopper–Pearson) binomial bounds here say how bad a rate could plausibly be.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.stats import beta
from sklearn.metrics import confusion_matrix, matthews_corrcoef

Side = Literal["two-sided", "upper", "lower"]


@dataclass(frozen=True)
class BinaryReport:
    """Counts and rates of a binary labelling (1 = stalled) against a reference.

    ``sensitivity_lower`` and ``specificity_lower`` are one-sided Clopper–Pearson lower bounds at
    ``confidence``: the rates the labelling reaches with that confidence.
    """

    tp: int
    fn: int
    tn: int
    fp: int
    sensitivity: float
    specificity: float
    sensitivity_lower: float
    specificity_lower: float
    mcc: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        """The report as a plain dict (for tables, JSON and audit records)."""
        return asdict(self)


def _binary(values: np.ndarray | list, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name}: expected only 0 (flowing) and 1 (stalled), got {np.unique(array)[:5]}")
    return array.astype(np.int8)


def confusion_counts(y_true: np.ndarray | list, y_pred: np.ndarray | list) -> tuple[int, int, int, int]:
    """Return ``(tp, fn, tn, fp)`` of binary predictions against reference labels (1 = stalled)."""
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
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
    y_true, y_pred = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
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


def binary_report(y_true: np.ndarray | list, y_pred: np.ndarray | list, *,
                  confidence: float = 0.95) -> BinaryReport:
    """Confusion counts, sensitivity, specificity, their lower confidence bounds and MCC."""
    tp, fn, tn, fp = confusion_counts(y_true, y_pred)
    sens_lower = 1 - float(clopper_pearson(fn, tp + fn, confidence=confidence, side="upper")[1]) if tp + fn else float("nan")
    spec_lower = 1 - float(clopper_pearson(fp, tn + fp, confidence=confidence, side="upper")[1]) if tn + fp else float("nan")
    return BinaryReport(tp=tp, fn=fn, tn=tn, fp=fp, sensitivity=_rate(tp, tp + fn), specificity=_rate(tn, tn + fp),
                        sensitivity_lower=sens_lower, specificity_lower=spec_lower,
                        mcc=mcc(y_true, y_pred), confidence=confidence)
