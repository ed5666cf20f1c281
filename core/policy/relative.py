"""The relative promise's tuner: each threshold chosen by fixed-sequence testing (Learn-then-Test).

Against the human standard a routed stack keeps its human answer, so only automatic decisions can
differ from it, and each side rests on one threshold: ``t_low`` changes human "stalled" answers
(risk ``P(p <= t_low | human stalled)``), ``t_high`` changes human "flowing" answers (risk
``P(p >= t_high | human flowing)``). Both risks are monotone along their threshold, so walking a
**fixed grid** of thresholds from the safe end and testing ``H0: risk > target`` at each point with
the exact binomial test, stopping at the first point not rejected, controls the family-wise error
(fixed-sequence testing; Learn-then-Test, Angelopoulos et al. 2021; Bates et al. 2021): with
probability at least ``1 - delta`` the threshold actually chosen keeps its risk within the target,
although it was tuned on the same reference. ``delta = 1 - confidence`` is split equally between
the two sides (Bonferroni), so both sides hold together at ``confidence``.

The grid is fixed before any data is seen (not the reference's own scores), as the procedure's
validity needs. The binomial test's p-value is ``P(Binomial(n, target) <= k)``; it is at most
``delta`` exactly when the one-sided Clopper–Pearson upper bound of ``k / n`` at ``1 - delta`` is
at most the target, which is how it is computed here (the bound also serves reports). MAPIE's
risk-control module implements Learn-then-Test for one threshold of precision / recall style
risks; these two class-conditional miss rates on one fixed grid are a single scipy call each, so
no dependency is added for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from core.metrics import clopper_pearson

SIDES = 2
"""The promise has two sides; ``1 - confidence`` is split equally between them."""


def side_confidence(confidence: float) -> float:
    """Confidence of each side's bound so that both hold together at ``confidence`` (Bonferroni).

    Examples
    --------
    >>> round(side_confidence(0.95), 6)
    0.975
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return 1 - (1 - confidence) / SIDES


def threshold_grid() -> np.ndarray:
    """The fixed candidate thresholds: steps of 0.0005 on [0, 1] and of 0.01 on the logit scale
    down to ``expit(-18)`` (the low tail, where the zero-failure regime puts ``t_low``)."""
    from scipy.special import expit  # here, not at the top: db.models imports this module (see core.metrics)

    return np.unique(np.concatenate([np.linspace(0, 1, 2001), expit(np.linspace(-18, 18, 3601))]))


@cache
def _grid() -> np.ndarray:
    return threshold_grid()


def __getattr__(name: str) -> Any:
    """``GRID``, the fixed grid of :func:`threshold_grid`, built on first use (it needs scipy, which
    costs a second to import, and db.models imports this module through core.policy.gate)."""
    if name == "GRID":
        return _grid()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class SideTest:
    """The fixed-sequence test of one side along :data:`GRID` (walked from the safe end).

    ``thresholds`` in walking order; ``errors[i]`` human answers of the side's class changed by
    threshold ``i`` (of ``n``); ``upper[i]`` the one-sided Clopper–Pearson bound of ``errors[i] / n``
    at the side's confidence; ``chosen`` the last index of the rejected prefix (``-1``: the side
    decides nothing).
    """

    thresholds: np.ndarray
    errors: np.ndarray
    n: int
    upper: np.ndarray
    chosen: int

    @property
    def threshold(self) -> float | None:
        """The chosen threshold, ``None`` when the side decides nothing."""
        return None if self.chosen < 0 else float(self.thresholds[self.chosen])


def side_test(scores: np.ndarray, y: np.ndarray, *, side: str, max_rate: float, confidence: float,
              scale: float = 1.0) -> SideTest:
    """Test one side (``"low"``: ``t_low`` against human "stalled" answers; ``"high"``: ``t_high``
    against human "flowing" ones) at ``confidence`` and pick its threshold.

    ``scale`` multiplies the reference's counts (errors and class size alike): what a reference
    ``scale`` times larger with the same error rates would allow (for "what more data would buy").
    """
    scores, y = np.asarray(scores, dtype=float), np.asarray(y)
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high', not {side!r}")
    cls = 1 if side == "low" else 0
    answers = np.sort(scores[y == cls])
    n = len(answers)
    if side == "low":
        thresholds, errors = _grid(), np.searchsorted(answers, _grid(), side="right")
    else:
        thresholds = _grid()[::-1]
        errors = n - np.searchsorted(answers, thresholds, side="left")
    if n == 0:
        raise ValueError(f"the reference holds no human {'stalled' if cls else 'flowing'} answers")
    upper = clopper_pearson(errors * scale, n * scale, confidence=confidence, side="upper")[1]
    rejected = upper <= max_rate
    chosen = len(rejected) - 1 if rejected.all() else int(np.argmin(rejected)) - 1
    return SideTest(thresholds=thresholds, errors=errors, n=n, upper=upper, chosen=chosen)


def uncross(t_low: float | None, t_high: float | None) -> tuple[float | None, float | None]:
    """Make ``t_low < t_high`` by raising ``t_high`` to the grid point after ``t_low`` when the two
    sides' choices meet; raising ``t_high`` only lowers its risk, so both guarantees still hold."""
    if t_low is None or t_high is None or t_low < t_high:
        return t_low, t_high
    grid = _grid()
    above = grid[grid > t_low]
    return t_low, (float(above[0]) if len(above) else None)


def relative_thresholds(scores: np.ndarray, y: np.ndarray, *, sensitivity: float, specificity: float,
                        confidence: float, scale: float = 1.0) -> tuple[float | None, float | None]:
    """The two thresholds of the relative promise: each side's fixed-sequence choice at half of
    ``1 - confidence``, uncrossed. ``scale`` as in :func:`side_test`."""
    level = side_confidence(confidence)
    low = side_test(scores, y, side="low", max_rate=1 - sensitivity, confidence=level, scale=scale)
    high = side_test(scores, y, side="high", max_rate=1 - specificity, confidence=level, scale=scale)
    return uncross(low.threshold, high.threshold)


def worst_case_at_share(changed_upper: float, reference_share: float, new_share: float,
                        other_max: float = 1.0) -> float:
    """The bound on the share of human answers of one class that automation changes, re-read at
    another stall share.

    Human answers of a class mix true members of that class ("own") and the humans' errors on the
    other class ("other"), and the mix moves with the stall share: at a lower share more of the
    human "stalled" answers are false alarms, which a good model decides flowing. The split is not
    observed, so the worst case is taken over every split with at most ``other_max`` of the
    answers of the other kind (a bound from the humans' error rates; 1 = anything) and every way
    the ``changed_upper`` share of changed answers falls on the two kinds: the changed ones on the
    kind whose weight grows, the kept ones as far as allowed on the kind whose weight shrinks
    (class-conditional score and answer distributions unchanged: label shift). For the "stalled"
    side pass the stall shares; for the "flowing" side the flowing shares (``1 -`` the stall shares).

    Examples
    --------
    >>> round(worst_case_at_share(0.01, 0.2, 0.2), 6)
    0.01
    >>> round(worst_case_at_share(0.0092, 0.2, 0.05), 3)
    0.042
    >>> round(worst_case_at_share(0.05, 0.8, 0.95, other_max=0.11), 3)
    0.055
    """
    for name, value in (("reference_share", reference_share), ("new_share", new_share)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {value}")
    if changed_upper <= 0:
        return 0.0
    own, other = new_share / reference_share, (1 - new_share) / (1 - reference_share)
    other_max = min(max(other_max, 0.0), 1.0)

    def reread(q: float) -> float:
        """The re-read share when a share ``q`` of the answers is of the other kind."""
        if other >= own:
            on_other = min(changed_upper, q)
            changed = on_other * other + (changed_upper - on_other) * own
        else:
            on_own = min(changed_upper, 1 - q)
            changed = on_own * own + (changed_upper - on_own) * other
        return changed / (q * other + (1 - q) * own)

    return float(max(reread(q) for q in (0.0, min(changed_upper, other_max), other_max)))
