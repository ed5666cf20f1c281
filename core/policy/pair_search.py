"""The exact search over threshold pairs behind :class:`core.policy.triage.TunedTriagePolicy`.

Each class's bound passes when ``counted + unreviewed`` errors stay within a budget that depends
on ``counted`` (:func:`core.metrics.mixed_error_budget`); both quantities move monotonically as
``t_high`` rises for a fixed ``t_low``, so one vectorised bisection per candidate finds the best
partner and the whole search is ``O(m log m)`` for ``m`` distinct scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _passes(budget: np.ndarray, counted: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Whether ``(counted, counted + unreviewed = total)`` meets a class's error budget."""
    inside = counted < len(budget)
    return inside & (total <= budget[np.minimum(counted, len(budget) - 1)]) if len(budget) else inside


def _sweep_low(values: np.ndarray, groups: dict[str, np.ndarray], miss_budget: np.ndarray,
               fa_budget: np.ndarray) -> pd.DataFrame:
    """For every choice of the auto-flowing set (scores <= values[i-1]), the smallest auto-stalled
    cut values[j-1] whose false alarms pass their budget, and whether the misses then pass theirs.

    With ``m`` unique scores, ``i`` in ``0..m`` (0 = none automatic) and ``j`` in ``i+1..m+1``
    (``m+1`` = none automatic). For fixed ``i``, raising ``j`` moves stacks from auto-stalled to
    humans: counted false alarms and (counted + unreviewed) flowing never grow, so the false-alarm
    test passes from some ``j`` on, while counted misses and (counted + unreviewed) stalls never
    shrink, and workload never shrinks: the smallest passing ``j`` is the best, and a bisection
    run for all ``i`` at once finds it in ``O(m log m)``.
    """
    m = len(values)

    def prefix(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(a)])

    count, pos, neg = prefix(groups["n"]), prefix(groups["pos"]), prefix(groups["neg"])
    hmiss, hfa, upos, uneg = (prefix(groups[k]) for k in ("hmiss", "hfa", "upos", "uneg"))
    i = np.arange(m + 1)
    # false alarms of (i, j) = by_j[j] - by_i[i]: auto-stalled flowing stacks plus answered ones in between
    counted_by_j = np.concatenate([[0], (neg[m] - neg) + hfa])  # index j (1..m+1) reads prefix j-1
    total_by_j = np.concatenate([[0], (neg[m] - neg) + hfa + uneg])
    counted_by_i, total_by_i = hfa, hfa + uneg

    def false_alarms(j: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return counted_by_j[j] - counted_by_i[rows], total_by_j[j] - total_by_i[rows]

    low, high = i + 1, np.full(m + 1, m + 1)
    reachable = _passes(fa_budget, *false_alarms(high, i))
    rows = np.flatnonzero(low < high)
    while len(rows):  # bisect only the candidates still open
        mid = (low[rows] + high[rows]) // 2
        ok = _passes(fa_budget, *false_alarms(mid, rows))
        high[rows[ok]] = mid[ok]
        low[rows[~ok]] = mid[~ok] + 1
        rows = rows[low[rows] < high[rows]]
    j = low
    fa_counted, fa_total = false_alarms(j, i)
    misses = pos[i] + hmiss[j - 1] - hmiss[i]
    miss_total = misses + upos[j - 1] - upos[i]
    padded = np.concatenate([[np.nan], values, [np.nan]])
    return pd.DataFrame({
        "t_low": padded[i], "t_high": padded[j], "n_auto": count[i] + (count[m] - count[j - 1]),
        "misses": misses, "false_alarms": fa_counted, "unreviewed_stalled": miss_total - misses,
        "unreviewed_flowing": fa_total - fa_counted,
        "feasible": reachable & _passes(miss_budget, misses, miss_total),
    })


MIRROR = {"t_low": "t_high", "t_high": "t_low", "misses": "false_alarms", "false_alarms": "misses",
          "unreviewed_stalled": "unreviewed_flowing", "unreviewed_flowing": "unreviewed_stalled"}
"""Column renames that turn a sweep of the mirrored problem (``-scores``, ``1 - y``) into one over ``t_high``."""


def sweep(scores: np.ndarray, y: np.ndarray, human: np.ndarray, miss_budget: np.ndarray,
          fa_budget: np.ndarray) -> pd.DataFrame:
    """For every ``t_low`` candidate (none, then each distinct score) the best ``t_high`` and
    whether the pair passes both budgets; ``human`` is NaN where no answer was recorded."""
    values, inverse = np.unique(scores, return_inverse=True)

    def per_value(mask: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=mask.astype(float), minlength=len(values)).astype(np.int64)

    open_ = np.isnan(human)
    groups = {"n": per_value(np.ones_like(y, dtype=bool)), "pos": per_value(y == 1), "neg": per_value(y == 0),
              "hmiss": per_value((y == 1) & (human == 0)), "hfa": per_value((y == 0) & (human == 1)),
              "upos": per_value((y == 1) & open_), "uneg": per_value((y == 0) & open_)}
    return _sweep_low(values, groups, miss_budget, fa_budget)
