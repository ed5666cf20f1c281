"""The triage policy (two thresholds on the model probability) and its tuner.

``p <= t_low`` is decided **flowing** automatically, ``p >= t_high`` **stalled**, anything in
between goes to a human; a side set to ``None`` decides nothing (the rule: :mod:`core.policy.band`). The
tuner picks the pair that decides the most stacks automatically while the *combined* labels
(model where automatic, humans elsewhere) keep sensitivity and specificity above targets, where
the targets bind upper confidence bounds of the miss and false-alarm rates, not just their point
estimates: with rare stalls a lucky sample must not pass for safety.

Humans err too. A routed stack's final human label misses a stall at some rate ``h`` that the
reference set cannot show (its labels *are* the reference), so the combined miss rate is
``a + r h``: ``a`` the share of stalls the policy gets wrong where it can be counted (decided
flowing, or routed and answered wrong by a recorded human answer), ``r`` the share routed with no
recorded answer. ``h`` comes from a :class:`~core.labels.skill.HumanErrorRates` (known-answer stacks, or
the stated prior; never silently zero). The bound splits ``alpha = 1 - confidence`` (Bonferroni):
``core.policy.combined_bound.HUMAN_ALPHA_SHARE`` of it for the upper bound ``w`` of ``h``, the rest for
:func:`core.metrics.mixed_error_upper` of ``a + w r`` on the reference set. False alarms likewise.
With a human error rate known to be zero the bound is exactly the plain Clopper–Pearson bound.

The classes follow scikit-learn's threshold classifiers: ``__init__`` only stores keyword-only
parameters, ``fit`` learns ``t_low_``/``t_high_`` and returns ``self``, ``predict`` decides.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.labels.skill import HumanErrorRates
from core.metrics import max_errors_within, zero_failure_size
from core.policy.band import BandRule, Decision, validate_thresholds
from core.policy.combined_bound import ClassBound
from core.policy.frontier import closest_policy, frontier, pair_table
from core.policy.pair_search import MIRROR, sweep
from core.policy.promise import DEFAULT_PROMISE, check_promise
from core.policy.relative import relative_thresholds, side_confidence

log = logging.getLogger(__name__)

class TriageWarning(UserWarning):
    """The reference set cannot support the requested guarantee, or no policy meets it."""


@dataclass(frozen=True)
class PolicyReport:
    """What a policy does on a reference set (combined model + human labels).

    ``misses`` / ``false_alarms`` are the errors that can be counted: automatic decisions, and
    routed stacks whose recorded human answer is wrong. ``unreviewed_stalled`` /
    ``unreviewed_flowing`` are routed stacks without a recorded answer: their errors enter through
    the human error rates. ``sensitivity`` / ``specificity`` are point estimates (human rates at
    their means); ``sensitivity_lower`` / ``specificity_lower`` are ``1 -`` the upper confidence
    bounds of the miss / false-alarm rate at ``confidence``, counting the humans'
    ``human_miss_upper`` / ``human_false_alarm_upper`` (their upper bounds at the human share of
    the confidence). ``human_basis`` says what those rest on. A side that decides nothing is
    ``None``. ``promise`` says which reading the bounds are (:mod:`core.policy.promise`): ``relative``
    bounds count only the automatic decisions' changes to the reference labels (routed stacks keep
    the human answer, human error rates zero by definition); ``absolute`` bounds count human error.
    Each side's bound is at :func:`core.policy.relative.side_confidence` so both hold together at
    ``confidence``.
    """

    t_low: float | None
    t_high: float | None
    n: int
    n_auto_flowing: int
    n_auto_stalled: int
    n_human: int
    auto_share: float
    misses: int
    false_alarms: int
    unreviewed_stalled: int
    unreviewed_flowing: int
    sensitivity: float
    specificity: float
    sensitivity_lower: float
    specificity_lower: float
    confidence: float
    promise: str
    human_basis: str
    human_miss_rate: float
    human_false_alarm_rate: float
    human_miss_upper: float
    human_false_alarm_upper: float

    def as_dict(self) -> dict[str, object]:
        """The report as a plain dict (for tables, JSON and audit records)."""
        return asdict(self)


def decide(scores: np.ndarray | list, t_low: float | None, t_high: float | None) -> np.ndarray:
    """Map probabilities to :class:`Decision` codes (``int8``) by :class:`core.policy.band.BandRule`:
    ``p <= t_low`` flowing, ``p >= t_high`` stalled, else human. ``None`` switches a side off.

    Examples
    --------
    >>> decide([0.01, 0.5, 0.99], 0.1, 0.9).tolist()
    [0, 2, 1]
    >>> decide([0.0, 1.0], None, 0.9).tolist()
    [2, 1]
    """
    return BandRule.of(t_low, t_high).decide(_scores(scores))


def _scores(scores: np.ndarray | list) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 1:
        raise ValueError(f"scores: expected a 1-D array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"scores: {int((~np.isfinite(scores)).sum())} of {len(scores)} are NaN or infinite")
    if len(scores) and (scores.min() < 0 or scores.max() > 1):
        raise ValueError(f"scores: probabilities must lie in [0, 1], got {scores.min()} .. {scores.max()}")
    return scores


def _reference(scores: np.ndarray | list, y: np.ndarray | list,
               human: np.ndarray | list | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate inputs; human answers are float 0/1, NaN where none was recorded."""
    scores = _scores(scores)
    y = np.asarray(y, dtype=float)
    if y.shape != scores.shape:
        raise ValueError(f"{len(scores)} scores but labels of shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels: expected only 0 (flowing) and 1 (stalled)")
    if human is None:
        human = np.full(len(y), np.nan)
    else:
        human = np.asarray(human, dtype=float)
        if human.shape != scores.shape:
            raise ValueError(f"{len(scores)} scores but human answers of shape {human.shape}")
        if not (np.isin(human, (0, 1)) | np.isnan(human)).all():
            raise ValueError("human answers: expected 0, 1 or NaN (no review)")
    return scores, y.astype(np.int8), human


def human_standard() -> HumanErrorRates:
    """The human side under the relative promise: routed stacks keep the human answer, which is the
    standard itself, so they change nothing."""
    perfect = HumanErrorRates.perfect()
    return HumanErrorRates(perfect.miss, perfect.false_alarm, "the human standard (routed stacks keep the human answer)")


def evaluate_policy(scores: np.ndarray | list, y: np.ndarray | list, t_low: float | None, t_high: float | None, *,
                    human: np.ndarray | list | None = None, human_errors: HumanErrorRates | None = None,
                    confidence: float = 0.95, promise: str = "absolute") -> PolicyReport:
    """Score a policy against reference labels.

    Parameters
    ----------
    scores
        Model probabilities (out-of-fold or held out: from the predictor that will be applied).
    y
        Reference labels, 1 = stalled (crowd or expert labels).
    t_low, t_high
        The policy (``None``: that side decides nothing).
    human
        Optional recorded human answers (0, 1, NaN = none) for reference stacks; where a routed
        stack has one, its error is counted directly. They must be independent of ``y`` (not the
        reviews ``y`` was made from), or they would always agree with it.
    human_errors
        Error rates of the final human label of routed stacks without a recorded answer;
        default :meth:`HumanErrorRates.prior`, never perfection. Ignored under the relative promise.
    confidence
        Confidence of both sides' bounds together (each side at :func:`side_confidence`).
    promise
        ``"absolute"`` (against the truth, human error counted) or ``"relative"`` (against the
        reference labels as the human standard; ``human`` and ``human_errors`` do not apply).
    """
    relative = check_promise(promise) == "relative"
    if relative:  # a side that decides nothing changes no human answer: its bound is exactly 1
        human, human_errors = None, human_standard()
    scores, y, human = _reference(scores, y, human)
    human_errors = human_errors if human_errors is not None else HumanErrorRates.prior()
    decision = decide(scores, t_low, t_high)
    t_low, t_high = validate_thresholds(t_low, t_high)
    routed = decision == Decision.HUMAN
    unreviewed = routed & np.isnan(human)
    answered = np.where(routed & ~unreviewed, human, decision)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    misses = int(((y == 1) & (answered == 0)).sum())
    false_alarms = int(((y == 0) & (answered == 1)).sum())
    open_pos, open_neg = int((unreviewed & (y == 1)).sum()), int((unreviewed & (y == 0)).sum())
    stalled = ClassBound(n_pos, human_errors.miss, side_confidence(confidence))
    flowing = ClassBound(n_neg, human_errors.false_alarm, side_confidence(confidence))
    n_human = int(routed.sum())
    return PolicyReport(
        t_low=t_low, t_high=t_high, n=len(y),
        n_auto_flowing=int((decision == Decision.FLOWING).sum()),
        n_auto_stalled=int((decision == Decision.STALLED).sum()), n_human=n_human,
        auto_share=(len(y) - n_human) / len(y) if len(y) else float("nan"),
        misses=misses, false_alarms=false_alarms, unreviewed_stalled=open_pos, unreviewed_flowing=open_neg,
        sensitivity=float(stalled.point(misses, open_pos)), specificity=float(flowing.point(false_alarms, open_neg)),
        sensitivity_lower=1.0 if relative and t_low is None else stalled.lower(misses, open_pos),
        specificity_lower=1.0 if relative and t_high is None else flowing.lower(false_alarms, open_neg),
        confidence=confidence, promise=promise, human_basis=human_errors.basis,
        human_miss_rate=human_errors.miss.mean, human_false_alarm_rate=human_errors.false_alarm.mean,
        human_miss_upper=stalled.weight, human_false_alarm_upper=flowing.weight)


class TriagePolicy:
    """A fixed two-threshold policy.

    Parameters
    ----------
    t_low, t_high
        ``p <= t_low`` → flowing, ``p >= t_high`` → stalled, else human; ``None`` switches a side
        off (rules: :func:`validate_thresholds`).

    Examples
    --------
    >>> TriagePolicy(t_low=0.2, t_high=0.8).fit().predict([0.1, 0.5, 0.9]).tolist()
    [0, 2, 1]
    """

    def __init__(self, *, t_low: float | None, t_high: float | None) -> None:
        self.t_low = t_low
        self.t_high = t_high

    def fit(self, *_: object) -> "TriagePolicy":
        """Validate and adopt the thresholds; returns ``self``."""
        self.t_low_, self.t_high_ = validate_thresholds(self.t_low, self.t_high)
        return self

    def predict(self, scores: np.ndarray | list) -> np.ndarray:
        """Decision code per stack (see :class:`Decision`)."""
        if not hasattr(self, "t_low_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")
        return decide(scores, self.t_low_, self.t_high_)


def _none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


class TunedTriagePolicy(TriagePolicy):
    """The two-threshold policy that automates the most stacks within a quality guarantee.

    Parameters
    ----------
    sensitivity, specificity
        Targets for the combined labels; each must hold for the one-sided lower confidence bound
        (``1 -`` the upper bound of the miss / false-alarm rate, human errors included).
    confidence
        Confidence of those bounds, e.g. 0.95.
    human_errors
        Error rates of the final human label of routed stacks
        (:class:`~core.labels.skill.HumanErrorRates`); default the stated prior. Pass
        ``HumanErrorRates.perfect()`` only to compare with the old assumption.
    curve_points
        Most rows kept per sweep in ``curve_`` (evenly spread; enough for a chart). The choice of
        the policy always uses every candidate.

    Attributes
    ----------
    t_low_, t_high_ : float or None
        The chosen thresholds (``None`` where that side decides nothing).
    human_errors_ : HumanErrorRates
        The human error rates the bounds used.
    report_ : PolicyReport
        The chosen policy on the reference set.
    curve_ : pandas.DataFrame
        Two sweeps for plotting (``sweep`` = ``"t_low"`` or ``"t_high"``): values of one
        threshold (every one, or ``curve_points`` of them; NaN = that side off) with the best
        value of the other, its automatic share, counted misses and false alarms, unreviewed
        routed stacks per class, point sensitivity/specificity and their lower bounds, and
        ``feasible``.
    feasible_ : bool
        False when no policy meets the targets; the policy is then the closest one in reach
        (:func:`core.policy.frontier.closest_policy`). Always True under the relative promise, where
        routing a stack changes no human answer.
    pairs_, frontier_ : pandas.DataFrame
        Candidate pairs with their bounds, and for each automatic share the best bounds in reach
        (:mod:`core.policy.frontier`).

    Notes
    -----
    Tune on scores from the predictor that will be applied, for stacks it never trained on
    (out-of-fold or held out): in-sample scores are over-confident and the guarantee would not
    hold on new stacks. The chosen pair is the exact optimum over every pair of candidate
    thresholds: the most automatic decisions whose bounds pass, ties broken by fewer counted
    misses, then false alarms. For human error measured where the humans work (the routed band),
    see :func:`core.policy.guarantee.tune_with_known_answers`.

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
                 promise: str = "absolute", human_errors: HumanErrorRates | None = None,
                 curve_points: int = 2000) -> None:
        self.sensitivity = sensitivity
        self.specificity = specificity
        self.confidence = confidence
        self.promise = promise
        self.human_errors = human_errors
        self.curve_points = curve_points

    def fit(self, scores: np.ndarray | list, y: np.ndarray | list,
            human: np.ndarray | list | None = None) -> "TunedTriagePolicy":
        """Learn ``t_low_`` and ``t_high_`` from scores and reference labels.

        Parameters
        ----------
        scores
            Out-of-fold or held-out model probabilities.
        y
            Reference labels (1 = stalled): crowd or expert labels.
        human
            Optional recorded human answers (0, 1, NaN = none), independent of ``y``; routed
            stacks with one are judged by it, the others by ``human_errors``.
        """
        for name in ("sensitivity", "specificity", "confidence"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {value}")
        relative = check_promise(self.promise) == "relative"
        scores, y, human = _reference(scores, y, None if relative else human)
        if relative:
            self.human_errors_ = human_standard()
        else:
            self.human_errors_ = self.human_errors if self.human_errors is not None else HumanErrorRates.prior()
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"the reference set needs both classes; it has {n_pos} stalled and {n_neg} flowing stacks")
        self._warn_if_too_few(n_pos, self.sensitivity, "stalled", "sensitivity")
        self._warn_if_too_few(n_neg, self.specificity, "flowing", "specificity")
        level = side_confidence(self.confidence)
        stalled = ClassBound(n_pos, self.human_errors_.miss, level)
        flowing = ClassBound(n_neg, self.human_errors_.false_alarm, level)
        miss_budget, fa_budget = stalled.budget(1 - self.sensitivity), flowing.budget(1 - self.specificity)
        low = sweep(scores, y, human, miss_budget, fa_budget)
        high = sweep(-scores, 1 - y, 1 - human, fa_budget, miss_budget).rename(columns=MIRROR)
        high[["t_low", "t_high"]] = -high[["t_low", "t_high"]]
        curve = pd.concat([low.assign(sweep="t_low"), high.assign(sweep="t_high")], ignore_index=True)
        self.pairs_ = pair_table(scores, y, human_errors=self.human_errors_, confidence=self.confidence,
                                 promise=self.promise)
        self.frontier_ = frontier(self.pairs_, sensitivity=self.sensitivity, specificity=self.specificity)
        keep = self._choose(scores, y, curve)
        self.curve_ = self._describe(self._thin(curve, keep), len(y), stalled, flowing)
        self.report_ = evaluate_policy(scores, y, self.t_low_, self.t_high_, human=human,
                                       human_errors=self.human_errors_, confidence=self.confidence,
                                       promise=self.promise)
        self.feasible_ = bool(self.report_.sensitivity_lower >= self.sensitivity
                              and self.report_.specificity_lower >= self.specificity)
        log.info("tuned policy t_low=%s t_high=%s: %.1f%% automatic, sensitivity >= %.4f, specificity >= %.4f (%s)",
                 self.t_low_, self.t_high_, 100 * self.report_.auto_share, self.report_.sensitivity_lower,
                 self.report_.specificity_lower, self.human_errors_.basis)
        return self

    def _choose(self, scores: np.ndarray, y: np.ndarray, curve: pd.DataFrame) -> list[int]:
        """Set ``t_low_``/``t_high_``; returns the curve rows to keep in ``curve_``.

        Relative: each side by fixed-sequence testing on a fixed grid (:mod:`core.policy.relative`), valid
        for the thresholds actually chosen. Absolute: the most automatic pair of the exact search
        whose bounds pass (fewest counted misses, then false alarms, on ties); when none passes,
        the pair closest to the targets (:func:`core.policy.frontier.closest_policy`), with a warning.
        """
        if self.promise == "relative":
            self.t_low_, self.t_high_ = relative_thresholds(scores, y, sensitivity=self.sensitivity,
                                                            specificity=self.specificity, confidence=self.confidence)
            return []
        feasible = np.flatnonzero(curve["feasible"].to_numpy())
        if len(feasible):
            keys = [curve[c].to_numpy()[feasible] for c in ("false_alarms", "misses", "n_auto")]
            best = feasible[np.lexsort((keys[0], keys[1], -keys[2]))[0]]
            self.t_low_, self.t_high_ = _none(curve["t_low"].iloc[best]), _none(curve["t_high"].iloc[best])
            return [best]
        closest = closest_policy(self.pairs_, sensitivity=self.sensitivity, specificity=self.specificity)
        self.t_low_, self.t_high_ = _none(closest["t_low"]), _none(closest["t_high"])
        warnings.warn(f"no policy meets the targets on this reference set: proposing the closest in reach "
                      f"({closest['auto_share']:.1%} automatic, sensitivity >= {closest['sensitivity_lower']:.4f}, "
                      f"specificity >= {closest['specificity_lower']:.4f}; human error rates: "
                      f"{self.human_errors_.basis})", TriageWarning, stacklevel=3)
        return []

    def _thin(self, curve: pd.DataFrame, keep: list[int]) -> pd.DataFrame:
        """At most ``curve_points`` evenly spread rows per sweep (plus the chosen policy)."""
        rows = list(keep)
        for _, sweep in curve.groupby("sweep", sort=False):
            picks = np.linspace(0, len(sweep) - 1, min(len(sweep), self.curve_points)).round().astype(int)
            rows.extend(sweep.index[np.unique(picks)])
        return curve.loc[sorted(set(rows))].reset_index(drop=True)

    @staticmethod
    def _describe(curve: pd.DataFrame, n: int, stalled: ClassBound, flowing: ClassBound) -> pd.DataFrame:
        """Add shares, point rates and their lower confidence bounds to curve rows."""
        misses, open_pos = curve["misses"].to_numpy(), curve["unreviewed_stalled"].to_numpy()
        false_alarms, open_neg = curve["false_alarms"].to_numpy(), curve["unreviewed_flowing"].to_numpy()
        return curve.assign(
            auto_share=curve["n_auto"] / n,
            sensitivity=stalled.point(misses, open_pos), specificity=flowing.point(false_alarms, open_neg),
            sensitivity_lower=stalled.lower(misses, open_pos), specificity_lower=flowing.lower(false_alarms, open_neg))

    def _warn_if_too_few(self, n: int, target: float, cls: str, metric: str) -> None:
        """Warn when even zero errors (and perfect humans) cannot prove the target."""
        level = side_confidence(self.confidence)
        if max_errors_within(n, 1 - target, confidence=level) < 0:
            need = zero_failure_size(target, level)
            warnings.warn(f"the reference set holds only {n} {cls} stacks: even with no errors the lower bound "
                          f"of {metric} ({level:.1%} per side, {self.confidence:.0%} for both together) stays below "
                          f"{target}; at least {need} are needed", TriageWarning, stacklevel=3)
