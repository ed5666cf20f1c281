"""The automation–quality frontier: what each automatic share can promise, the policy in reach
closest to targets that are not, and what more reference data would buy.

A lab judges a policy by one number, the share decided automatically while the promise holds; a
refusal tells it nothing. So instead of "no policy meets the targets" the tool shows, for each
automatic share, the best lower bounds a policy with at least that share reaches (the better of the
two bounds' shortfalls against the targets, maximised), proposes the policy closest to the targets
(never one a more automatic policy matches on both bounds), and says how much more would be
automatic with a larger reference at the same error rates.

The pairs come from a thinned grid of the reference's own scores; the chosen policy of the relative
promise comes from :mod:`core.policy.relative`'s fixed grid, not from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.labels.skill import HumanErrorRates
from core.policy.band import BandRule
from core.policy.combined_bound import ClassBound
from core.policy.relative import relative_thresholds, side_confidence

SHARES = np.round(np.linspace(0, 1, 21), 2)
"""Automatic shares the frontier table reports (every 5 %)."""
SCALES = (2.0, 4.0, 10.0)
"""Reference sizes (times the current one) for "what more data would buy"."""


def _candidates(scores: np.ndarray, points: int) -> np.ndarray:
    """Up to ``points`` distinct reference scores, evenly spread by rank, with NaN for "side off"."""
    values = np.unique(scores)
    picks = values[np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).round().astype(int))]
    return np.concatenate([[np.nan], picks])


def pair_table(scores: np.ndarray, y: np.ndarray, *, human_errors: HumanErrorRates, confidence: float,
               promise: str, points: int = 240) -> pd.DataFrame:
    """Every pair of candidate thresholds (``points`` per side, NaN = side off, ``t_low < t_high``)
    with its automatic share and both lower bounds at ``confidence`` for both sides together.

    ``human_errors`` are the rates of routed stacks' human labels: the human standard's zero rates
    for the relative promise (where a side that is off changes nothing: bound exactly 1), measured /
    assumed / prior rates for the absolute one.
    """
    scores, y = np.asarray(scores, dtype=float), np.asarray(y)
    stalls, flowing = np.sort(scores[y == 1]), np.sort(scores[y == 0])
    everything = np.sort(scores)
    low, high = _candidates(scores, points), _candidates(scores, points)
    lo, hi = np.meshgrid(low, high, indexing="ij")
    lo, hi = lo.ravel(), hi.ravel()
    keep = np.isnan(lo) | np.isnan(hi) | (lo < hi)
    lo, hi = lo[keep], hi[keep]

    def at_most(values: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(t), 0, np.searchsorted(values, np.nan_to_num(t), side="right"))

    def at_least(values: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(t), 0, len(values) - np.searchsorted(values, np.nan_to_num(t), side="left"))

    misses, false_alarms = at_most(stalls, lo), at_least(flowing, hi)
    open_pos = len(stalls) - misses - at_least(stalls, hi)
    open_neg = len(flowing) - false_alarms - at_most(flowing, lo)
    level = side_confidence(confidence)
    sens = ClassBound(len(stalls), human_errors.miss, level)
    spec = ClassBound(len(flowing), human_errors.false_alarm, level)
    auto = (at_most(everything, lo) + at_least(everything, hi)) / len(scores)
    sens_lower, spec_lower = sens.lower(misses, open_pos), spec.lower(false_alarms, open_neg)
    if promise == "relative":
        sens_lower, spec_lower = np.where(np.isnan(lo), 1.0, sens_lower), np.where(np.isnan(hi), 1.0, spec_lower)
    return pd.DataFrame({"t_low": lo, "t_high": hi, "auto_share": auto, "sensitivity_lower": sens_lower,
                         "specificity_lower": spec_lower})


def _margin(table: pd.DataFrame, sensitivity: float, specificity: float) -> np.ndarray:
    """How far the worse of a pair's two bounds sits above (or below, negative) its target."""
    return np.minimum(table["sensitivity_lower"] - sensitivity, table["specificity_lower"] - specificity).to_numpy()


def closest_policy(table: pd.DataFrame, *, sensitivity: float, specificity: float) -> pd.Series:
    """The pair whose worse bound falls least short of its target; among equals the most
    automatic, then the one with the larger sum of bounds (so no pair of the table has at least
    its share and both bounds at least as high, one higher)."""
    margin = _margin(table, sensitivity, specificity)
    total = (table["sensitivity_lower"] + table["specificity_lower"]).to_numpy()
    order = np.lexsort((-total, -table["auto_share"].to_numpy(), -margin))
    return table.iloc[order[0]]


def frontier(table: pd.DataFrame, *, sensitivity: float, specificity: float,
             shares: np.ndarray = SHARES) -> pd.DataFrame:
    """For each automatic share, the best lower bounds a policy with at least that share reaches:
    the pair of :func:`pair_table` (with ``auto_share >= share``) whose worse bound falls least
    short of its target. Columns: ``share``, ``t_low``, ``t_high``, ``auto_share``,
    ``sensitivity_lower``, ``specificity_lower``, ``meets`` (both targets)."""
    rows = []
    for share in shares:
        reach = table[table["auto_share"] >= share - 1e-12]
        if reach.empty:
            continue
        best = closest_policy(reach, sensitivity=sensitivity, specificity=specificity)
        rows.append({"share": float(share), **best.to_dict()})
    out = pd.DataFrame(rows, columns=["share", "t_low", "t_high", "auto_share", "sensitivity_lower",
                                      "specificity_lower"])
    out["meets"] = (out["sensitivity_lower"] >= sensitivity) & (out["specificity_lower"] >= specificity)
    return out


def more_data(scores: np.ndarray, y: np.ndarray, *, sensitivity: float, specificity: float, confidence: float,
              scales: tuple[float, ...] = SCALES) -> pd.DataFrame:
    """What a larger reference would buy under the relative promise: for each size (times the
    current one, every count scaled, so the error rates stay those observed), the stalls and
    flowing stacks it holds and the automatic share its policy would reach."""
    scores, y = np.asarray(scores, dtype=float), np.asarray(y)
    rows = []
    for scale in (1.0, *scales):
        t_low, t_high = relative_thresholds(scores, y, sensitivity=sensitivity, specificity=specificity,
                                            confidence=confidence, scale=scale)
        auto = BandRule.of(t_low, t_high).automatic(scores).sum()
        rows.append({"scale": scale, "stalled": int(round(scale * (y == 1).sum())),
                     "flowing": int(round(scale * (y == 0).sum())), "t_low": t_low, "t_high": t_high,
                     "auto_share": float(auto / len(scores))})
    return pd.DataFrame(rows)
