"""The error bound of one class for combined model + human labels, human error included.

A routed stack's human label is wrong at a rate the reference set cannot show, so the bound
splits ``alpha = 1 - confidence`` (Bonferroni): ``HUMAN_ALPHA_SHARE`` of it for the upper bound
``w`` of the human error rate, the rest for :func:`core.metrics.mixed_error_upper` of
``a + w r`` on the reference set (``a``: counted errors, ``r``: routed stacks without a recorded
answer). Used by ``core.policy.triage`` for reports, curves and the tuner's budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.labels.skill import ErrorRate
from core.metrics import mixed_error_budget, mixed_error_upper

HUMAN_ALPHA_SHARE = 0.5
"""Share of ``1 - confidence`` spent on the human error rate's bound (the rest on the reference set)."""


@dataclass(frozen=True)
class ClassBound:
    """The error bound of one class of the reference set (stalled: misses; flowing: false alarms)
    for combined model + human labels, human error included.

    ``n`` stacks of the class; ``rate`` the human error rate on it (miss or false alarm);
    ``confidence`` of the whole bound. ``HUMAN_ALPHA_SHARE`` of ``1 - confidence`` goes to the
    rate's upper bound ``weight``, the rest to the reference set (``reference_confidence``); a rate
    known to be zero takes none.
    """

    n: int
    rate: ErrorRate
    confidence: float

    @property
    def human_confidence(self) -> float:
        """Level of the human error rate's upper bound."""
        return 1.0 if self.rate.certain_zero else 1 - (1 - self.confidence) * HUMAN_ALPHA_SHARE

    @property
    def weight(self) -> float:
        """Upper bound of the human error rate: what an unanswered routed stack may cost."""
        return self.rate.upper(self.human_confidence)

    @property
    def reference_confidence(self) -> float:
        """Confidence left for the reference set's part of the bound."""
        return self.confidence + (1 - self.human_confidence)

    def lower(self, counted: np.ndarray | int, unreviewed: np.ndarray | int) -> np.ndarray | float:
        """``1 -`` the upper bound of the error rate; NaN for an empty class."""
        if self.n == 0:
            return np.full(np.shape(counted), np.nan) if np.ndim(counted) else float("nan")
        upper = mixed_error_upper(counted, unreviewed, self.n, self.weight, confidence=self.reference_confidence)
        return 1 - upper if np.ndim(upper) else 1 - float(upper)

    def point(self, counted: np.ndarray | int, unreviewed: np.ndarray | int) -> np.ndarray | float:
        """``1 -`` the expected error rate (human errors at their mean rate)."""
        if self.n == 0:
            return np.full(np.shape(counted), np.nan) if np.ndim(counted) else float("nan")
        return 1 - (np.asarray(counted) + self.rate.mean * np.asarray(unreviewed)) / self.n

    def budget(self, max_rate: float) -> np.ndarray:
        """Largest ``counted + unreviewed`` allowed per ``counted`` (see ``mixed_error_budget``)."""
        return mixed_error_budget(self.n, self.weight, max_rate, confidence=self.reference_confidence)
