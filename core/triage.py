"""The triage policy (two thresholds on the model probability) and its tuner.

``p <= t_low`` is decided **flowing** automatically, ``p >= t_high`` **stalled**, anything in
between goes to a human. The tuner picks the pair that decides the most stacks automatically while
the *combined* labels (model where automatic, humans elsewhere) keep sensitivity and specificity
above targets, where the targets bind the upper Clopper–Pearson bound of the miss and false-alarm
rates, not just their point estimates: with rare stalls a lucky sample must not pass for safety.

The classes follow scikit-learn's threshold classifiers: ``__init__`` only stores keyword-only
parameters, ``fit`` learns ``t_low_``/``t_high_`` and returns ``self``, ``predict`` decides.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

from core.metrics import clopper_pearson, max_errors_within

log = logging.getLogger(__name__)


class Decision(IntEnum):
    """What the policy does with one stack."""

    FLOWING = 0
    STALLED = 1
    HUMAN = 2


class TriageWarning(UserWarning):
    """The reference set cannot support the requested guarantee, or no policy meets it."""


@dataclass(frozen=True)
class PolicyReport:
    """What a policy does on a reference set (combined model + human labels).

    ``sensitivity_lower`` / ``specificity_lower`` are ``1 -`` the one-sided upper Clopper–Pearson
    bound of the miss / false-alarm rate at ``confidence``.
    """

    t_low: float
    t_high: float
    n: int
    n_auto_flowing: int
    n_auto_stalled: int
    n_human: int
    auto_share: float
    misses: int
    false_alarms: int
    sensitivity: float
    specificity: float
    sensitivity_lower: float
    specificity_lower: float
    confidence: float

    def as_dict(self) -> dict[str, float]:
        """The report as a plain dict (for tables, JSON and audit records)."""
        return asdict(self)


def decide(scores: np.ndarray | list, t_low: float, t_high: float) -> np.ndarray:
    """Map probabilities to :class:`Decision` codes (``int8``): ``p <= t_low`` flowing,
    ``p >= t_high`` stalled, else human. ``-inf`` / ``+inf`` switch a side off.

    Examples
    --------
    >>> decide([0.01, 0.5, 0.99], 0.1, 0.9).tolist()
    [0, 2, 1]
    """
    if not t_low < t_high:
        raise ValueError(f"t_low must be below t_high, got t_low={t_low}, t_high={t_high}")
    scores = _scores(scores)
    out = np.full(len(scores), Decision.HUMAN, dtype=np.int8)
    out[scores <= t_low] = Decision.FLOWING
    out[scores >= t_high] = Decision.STALLED
    return out


def _scores(scores: np.ndarray | list) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores: expected a 1-D array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores: {int((~np.isfinite(scores)).sum())} of {len(scores)} are NaN or infinite")
    return scores


def _reference(scores: np.ndarray | list, y: np.ndarray | list,
               human: np.ndarray | list | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs; human answers default to the reference (humans assumed right)."""
    scores = _scores(scores)
    y = np.asarray(y, dtype=float)
    if y.shape != scores.shape:
        raise ValueError(f"{len(scores)} scores but labels of shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels: expected only 0 (flowing) and 1 (stalled)")
    if human is None:
        human = y.copy()
    else:
        human = np.asarray(human, dtype=float)
        if human.shape != scores.shape:
            raise ValueError(f"{len(scores)} scores but human answers of shape {human.shape}")
        if not (np.isin(human, (0, 1)) | np.isnan(human)).all():
            raise ValueError("human answers: expected 0, 1 or NaN (no review)")
        human = np.where(np.isnan(human), y, human)
    return scores, y.astype(np.int8), human.astype(np.int8)


def evaluate_policy(scores: np.ndarray | list, y: np.ndarray | list, t_low: float, t_high: float, *,
                    human: np.ndarray | list | None = None, confidence: float = 0.95) -> PolicyReport:
    """Score a policy against reference labels.

    Parameters
    ----------
    scores
        Model probabilities (out-of-fold for stacks the model trained on).
    y
        Reference labels, 1 = stalled (crowd labels or agreed human reviews).
    t_low, t_high
        The policy.
    human
        Optional human answers (0, 1, NaN = not reviewed); human-routed stacks without one count
        as answered correctly.
    confidence
        Confidence of the one-sided bounds.
    """
    scores, y, human = _reference(scores, y, human)
    decision = decide(scores, t_low, t_high)
    combined = np.where(decision == Decision.HUMAN, human, decision)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    misses = int(((y == 1) & (combined == 0)).sum())
    false_alarms = int(((y == 0) & (combined == 1)).sum())
    n_human = int((decision == Decision.HUMAN).sum())
    return PolicyReport(
        t_low=float(t_low), t_high=float(t_high), n=len(y),
        n_auto_flowing=int((decision == Decision.FLOWING).sum()),
        n_auto_stalled=int((decision == Decision.STALLED).sum()), n_human=n_human,
        auto_share=(len(y) - n_human) / len(y) if len(y) else float("nan"),
        misses=misses, false_alarms=false_alarms,
        sensitivity=1 - misses / n_pos if n_pos else float("nan"),
        specificity=1 - false_alarms / n_neg if n_neg else float("nan"),
        sensitivity_lower=_lower(misses, n_pos, confidence),
        specificity_lower=_lower(false_alarms, n_neg, confidence),
        confidence=confidence)


def _lower(errors: np.ndarray | int, n: int, confidence: float) -> np.ndarray | float:
    """``1 -`` the one-sided upper bound of the error rate; NaN for an empty class."""
    if n == 0:
        return np.full(np.shape(errors), np.nan) if np.ndim(errors) else float("nan")
    if not np.ndim(errors):
        return 1 - float(clopper_pearson(errors, n, confidence=confidence, side="upper")[1])
    counts, inverse = np.unique(errors, return_inverse=True)  # few distinct counts: bound each once
    return 1 - clopper_pearson(counts, n, confidence=confidence, side="upper")[1][inverse]


class TriagePolicy:
    """A fixed two-threshold policy.

    Parameters
    ----------
    t_low, t_high
        ``p <= t_low`` → flowing, ``p >= t_high`` → stalled, else human (``t_low < t_high``).

    Examples
    --------
    >>> TriagePolicy(t_low=0.2, t_high=0.8).fit().predict([0.1, 0.5, 0.9]).tolist()
    [0, 2, 1]
    """

    def __init__(self, *, t_low: float, t_high: float) -> None:
        self.t_low = t_low
        self.t_high = t_high

    def fit(self, *_: object) -> "TriagePolicy":
        """Validate and adopt the thresholds; returns ``self``."""
        if not self.t_low < self.t_high:
            raise ValueError(f"t_low must be below t_high, got t_low={self.t_low}, t_high={self.t_high}")
        self.t_low_, self.t_high_ = float(self.t_low), float(self.t_high)
        return self

    def predict(self, scores: np.ndarray | list) -> np.ndarray:
        """Decision code per stack (see :class:`Decision`)."""
        if not hasattr(self, "t_low_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")
        return decide(scores, self.t_low_, self.t_high_)


def _sweep_low(values: np.ndarray, groups: dict[str, np.ndarray], max_miss: int, max_fa: int) -> pd.DataFrame:
    """For every choice of the auto-flowing set (scores <= u[i]), the smallest auto-stalled cut
    u[j] that keeps false alarms within ``max_fa``, and whether misses then stay within ``max_miss``.

    With ``m`` unique scores, ``i`` in ``0..m`` (0 = none automatic) and ``j`` in ``i+1..m+1``
    (``m+1`` = none automatic). For fixed ``i``, false alarms never grow with ``j`` while misses
    and workload never shrink, so the smallest feasible ``j`` is the best; a binary search finds it.
    """
    m = len(values)

    def prefix(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(a)])

    count, pos, neg = prefix(groups["n"]), prefix(groups["pos"]), prefix(groups["neg"])
    hmiss, hfa = prefix(groups["hmiss"]), prefix(groups["hfa"])
    i = np.arange(m + 1)
    j_all = np.arange(1, m + 2)
    # false alarms for (i, j) = neg[j..m] + hfa[i+1..j-1] = g(j) - hfa[i], with g non-increasing in j
    g = (neg[m] - neg[j_all - 1]) + hfa[j_all - 1]
    allowed = max_fa + hfa[i]
    # smallest j > i with g(j) <= allowed: search the ascending -g, restricted to j > i
    first = np.searchsorted(-g, -allowed, side="left") + 1
    j = np.maximum(first, i + 1)
    ok_fa = (max_fa >= 0) & (j <= m + 1)
    j = np.minimum(j, m + 1)
    misses = pos[i] + hmiss[j - 1] - hmiss[i]
    false_alarms = (neg[m] - neg[j - 1]) + hfa[j - 1] - hfa[i]
    auto = count[i] + (count[m] - count[j - 1])
    padded = np.concatenate([[-np.inf], values, [np.inf]])
    return pd.DataFrame({
        "t_low": padded[i], "t_high": padded[j], "n_auto": auto, "misses": misses,
        "false_alarms": false_alarms, "feasible": ok_fa & (misses <= max_miss),
    })


class TunedTriagePolicy(TriagePolicy):
    """The two-threshold policy that automates the most stacks within a quality guarantee.

    Parameters
    ----------
    sensitivity, specificity
        Targets for the combined labels; each must hold for the one-sided lower confidence bound
        (1 - the upper Clopper–Pearson bound of the miss / false-alarm rate).
    confidence
        Confidence of those bounds, e.g. 0.95.
    curve_points
        Most rows kept per sweep in ``curve_`` (evenly spread; enough for a chart). The choice of
        the policy always uses every candidate.

    Attributes
    ----------
    t_low_, t_high_ : float
        The chosen thresholds (``-inf`` / ``+inf`` where that side decides nothing).
    report_ : PolicyReport
        The chosen policy on the reference set.
    curve_ : pandas.DataFrame
        Two sweeps for plotting (``sweep`` = ``"t_low"`` or ``"t_high"``): values of one
        threshold (every one, or ``curve_points`` of them) with the best value of the other, its automatic share, misses, false alarms,
        point sensitivity/specificity and their lower bounds, and ``feasible``.
    feasible_ : bool
        False when no policy meets the targets; the policy then routes every stack to humans.

    Notes
    -----
    Tune on scores the model never trained on (out-of-fold or held-out predictions): in-sample
    scores are over-confident and the guarantee would not hold on new stacks.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = (rng.random(4000) < 0.2).astype(int)
    >>> p = np.clip(y * 0.7 + rng.normal(0.15, 0.1, 4000), 0, 1)
    >>> tuned = TunedTriagePolicy(sensitivity=0.95, specificity=0.95).fit(p, y)
    >>> tuned.feasible_ and tuned.report_.sensitivity_lower >= 0.95
    True
    """

    def __init__(self, *, sensitivity: float = 0.99, specificity: float = 0.95, confidence: float = 0.95,
                 curve_points: int = 2000) -> None:
        self.sensitivity = sensitivity
        self.specificity = specificity
        self.confidence = confidence
        self.curve_points = curve_points

    def fit(self, scores: np.ndarray | list, y: np.ndarray | list,
            human: np.ndarray | list | None = None) -> "TunedTriagePolicy":
        """Learn ``t_low_`` and ``t_high_`` from scores and reference labels.

        Parameters
        ----------
        scores
            Out-of-fold or held-out model probabilities.
        y
            Reference labels (1 = stalled): crowd labels, or agreed human reviews.
        human
            Optional human answers (0, 1, NaN = not reviewed) for stacks routed to humans;
            unreviewed ones count as answered correctly.
        """
        for name in ("sensitivity", "specificity", "confidence"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {value}")
        scores, y, human = _reference(scores, y, human)
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"the reference set needs both classes; it has {n_pos} stalled and {n_neg} flowing stacks")
        max_miss = self._max_errors(n_pos, self.sensitivity, "stalled", "sensitivity")
        max_fa = self._max_errors(n_neg, self.specificity, "flowing", "specificity")
        low = self._sweep(scores, y, human, max_miss, max_fa)
        high = self._sweep(-scores, 1 - y, 1 - human, max_fa, max_miss)
        high = high.rename(columns={"t_low": "t_high", "t_high": "t_low", "misses": "false_alarms",
                                    "false_alarms": "misses"})
        high[["t_low", "t_high"]] = -high[["t_low", "t_high"]]
        curve = pd.concat([low.assign(sweep="t_low"), high.assign(sweep="t_high")], ignore_index=True)
        self.feasible_ = bool(curve["feasible"].any())
        if self.feasible_:
            best = curve[curve["feasible"]].sort_values(["n_auto", "misses", "false_alarms"],
                                                        ascending=[False, True, True], kind="stable")
            self.t_low_, self.t_high_ = float(best["t_low"].iloc[0]), float(best["t_high"].iloc[0])
            keep = [best.index[0]]
        else:
            warnings.warn("no policy meets the targets on this reference set: routing every stack to humans",
                          TriageWarning, stacklevel=2)
            self.t_low_, self.t_high_ = -np.inf, np.inf
            keep = []
        self.curve_ = self._describe(self._thin(curve, keep), len(y), n_pos, n_neg)
        self.report_ = evaluate_policy(scores, y, self.t_low_, self.t_high_, human=human, confidence=self.confidence)
        log.info("tuned policy t_low=%.4g t_high=%.4g: %.1f%% automatic, sensitivity >= %.4f, specificity >= %.4f",
                 self.t_low_, self.t_high_, 100 * self.report_.auto_share,
                 self.report_.sensitivity_lower, self.report_.specificity_lower)
        return self

    def _thin(self, curve: pd.DataFrame, keep: list[int]) -> pd.DataFrame:
        """At most ``curve_points`` evenly spread rows per sweep (plus the chosen policy)."""
        rows = list(keep)
        for _, sweep in curve.groupby("sweep", sort=False):
            picks = np.linspace(0, len(sweep) - 1, min(len(sweep), self.curve_points)).round().astype(int)
            rows.extend(sweep.index[np.unique(picks)])
        return curve.loc[sorted(set(rows))].reset_index(drop=True)

    def _describe(self, curve: pd.DataFrame, n: int, n_pos: int, n_neg: int) -> pd.DataFrame:
        """Add shares, point rates and their lower confidence bounds to curve rows."""
        return curve.assign(
            auto_share=curve["n_auto"] / n,
            sensitivity=1 - curve["misses"] / n_pos,
            specificity=1 - curve["false_alarms"] / n_neg,
            sensitivity_lower=_lower(curve["misses"].to_numpy(), n_pos, self.confidence),
            specificity_lower=_lower(curve["false_alarms"].to_numpy(), n_neg, self.confidence))

    def _max_errors(self, n: int, target: float, cls: str, metric: str) -> int:
        """Error budget for one class; warns when even zero errors cannot prove the target."""
        k = max_errors_within(n, 1 - target, confidence=self.confidence)
        if k < 0:
            need = int(np.ceil(np.log(1 - self.confidence) / np.log(target)))
            warnings.warn(f"the reference set holds only {n} {cls} stacks: even with no errors the "
                          f"{self.confidence:.0%} lower bound of {metric} stays below {target}; "
                          f"at least {need} are needed", TriageWarning, stacklevel=3)
        return k

    @staticmethod
    def _sweep(scores: np.ndarray, y: np.ndarray, human: np.ndarray, max_miss: int, max_fa: int) -> pd.DataFrame:
        values, inverse = np.unique(scores, return_inverse=True)

        def per_value(mask: np.ndarray) -> np.ndarray:
            return np.bincount(inverse, weights=mask.astype(float), minlength=len(values)).astype(np.int64)

        groups = {"n": per_value(np.ones_like(y, dtype=bool)), "pos": per_value(y == 1), "neg": per_value(y == 0),
                  "hmiss": per_value((y == 1) & (human == 0)), "hfa": per_value((y == 0) & (human == 1))}
        return _sweep_low(values, groups, max_miss, max_fa)
