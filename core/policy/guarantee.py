"""Tuning with human error measured where the humans will work: the routed band.

Humans err more on hard stacks, and the policy routes exactly the hard ones. Error rates measured
on known-answer stacks from every score (most of them easy) flatter the humans, and the promise
fails on new stacks (``bench/guarantee.py``: coverage 0.83-0.90 instead of 0.95). So the rates that
a policy's promise rests on come from the known-answer stacks whose model score lies in *that
policy's* routed band, or rates known to be worse. The band depends on the rates, so
:func:`tune_with_known_answers` re-tunes with ever more pessimistic rates until the chosen policy's
own band shows no worse ones.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from core.labels.skill import HumanErrorRates
from core.policy.combined_bound import HUMAN_ALPHA_SHARE
from core.policy.relative import side_confidence
from core.policy.triage import Decision, TriageWarning, TunedTriagePolicy, decide, evaluate_policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownAnswers:
    """Known-answer stacks as the humans answered them.

    ``label`` is each stack's final human label produced exactly as a routed stack's is (one review
    for k = 1; for k > 1 the skill-weighted label computed without the known answer, e.g.
    :meth:`core.labels.skill.DawidSkene.predict`), ``truth`` the known answer, ``score`` the model's
    probability under the run being tuned (to place the stack in or out of a band), ``reviewers``
    optionally who answered (for the basis text).
    """

    score: np.ndarray
    label: np.ndarray
    truth: np.ndarray
    reviewers: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {len(self.score), len(self.label), len(self.truth)}
        if len(lengths) != 1:
            raise ValueError(f"known answers: score, label and truth differ in length ({sorted(lengths)})")

    def rates(self, t_low: float | None, t_high: float | None, *,
              prior: HumanErrorRates | None = None) -> HumanErrorRates:
        """Human error rates from the known answers routed by the policy ``(t_low, t_high)``
        (``None, None``: all of them); the prior alone when none lies in the band."""
        inside = decide(self.score, t_low, t_high) == Decision.HUMAN
        prior = prior if prior is not None else HumanErrorRates.prior()
        if not inside.any():
            return prior
        reviewers = None if self.reviewers is None else np.asarray(self.reviewers)[inside]
        rates = HumanErrorRates.from_known_answers(np.asarray(self.label)[inside], np.asarray(self.truth)[inside],
                                                   reviewers=reviewers, prior=prior)
        where = "every score" if t_low is None and t_high is None else "the routed band"
        return HumanErrorRates(rates.miss, rates.false_alarm, f"{rates.basis}, from {where}")


def _worse(used: HumanErrorRates, own: HumanErrorRates, level: float) -> HumanErrorRates:
    """Per class the rate with the higher upper bound at ``level``."""
    miss = used.miss if used.miss.upper(level) >= own.miss.upper(level) else own.miss
    false_alarm = used.false_alarm if used.false_alarm.upper(level) >= own.false_alarm.upper(level) else own.false_alarm
    if (miss, false_alarm) == (used.miss, used.false_alarm):
        return used
    if (miss, false_alarm) == (own.miss, own.false_alarm):
        return own
    source = (used, own) if miss == used.miss else (own, used)
    return HumanErrorRates(miss, false_alarm, f"miss rate: {source[0].basis}; false-alarm rate: {source[1].basis}")


def tune_with_known_answers(scores: np.ndarray, y: np.ndarray, known: KnownAnswers, *, sensitivity: float,
                            specificity: float, confidence: float = 0.95, human: np.ndarray | None = None,
                            prior: HumanErrorRates | None = None, max_rounds: int = 5,
                            curve_points: int = 2000) -> TunedTriagePolicy:
    """Tune a policy whose promise rests on human error rates no better than those measured on
    the known answers of its own routed band.

    Round 1 uses the known answers from every score. After each round, the known answers inside
    the chosen policy's band are compared with the rates used: if they are no worse (per class,
    upper bound at the human share of the confidence), the promise is safe and the policy is
    returned. Otherwise the next round uses, per class, the worse of the two, so the rates only
    grow and the rounds end. If ``max_rounds`` pass first, the last policy is kept and its
    ``report_``, ``human_errors_`` and ``feasible_`` are re-stated with the known answers of its
    own band (``curve_`` stays that of the last round), with a
    :class:`~core.policy.triage.TriageWarning`.

    Parameters
    ----------
    scores, y, human
        The reference set, as for :meth:`TunedTriagePolicy.fit`.
    known
        The known-answer stacks (:class:`KnownAnswers`).
    sensitivity, specificity, confidence, curve_points
        As for :class:`~core.policy.triage.TunedTriagePolicy`.
    prior
        The prior the known answers update (default :meth:`HumanErrorRates.prior`).
    max_rounds
        Most tuning rounds.
    """
    level = 1 - (1 - side_confidence(confidence)) * HUMAN_ALPHA_SHARE  # the level ClassBound bounds each rate at
    rates = known.rates(None, None, prior=prior)
    for round_ in range(1, max_rounds + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TriageWarning)  # only the final policy's warnings matter
            tuned = TunedTriagePolicy(sensitivity=sensitivity, specificity=specificity, confidence=confidence,
                                      human_errors=rates, curve_points=curve_points).fit(scores, y, human)
        own = known.rates(tuned.t_low_, tuned.t_high_, prior=prior)
        log.info("round %d: t_low=%s t_high=%s on %s", round_, tuned.t_low_, tuned.t_high_, rates.basis)
        if _worse(rates, own, level) == rates:
            if not tuned.feasible_:
                warnings.warn("no policy meets the targets on this reference set: proposing the closest in reach "
                              f"({tuned.report_.auto_share:.1%} automatic, sensitivity >= "
                              f"{tuned.report_.sensitivity_lower:.4f}, specificity >= "
                              f"{tuned.report_.specificity_lower:.4f}; human error rates: {rates.basis})",
                              TriageWarning, stacklevel=2)
            return tuned
        rates = _worse(rates, own, level)
    tuned.human_errors_ = own
    tuned.report_ = evaluate_policy(scores, y, tuned.t_low_, tuned.t_high_, human=human, human_errors=own,
                                    confidence=confidence)
    tuned.feasible_ = bool(tuned.report_.sensitivity_lower >= sensitivity
                           and tuned.report_.specificity_lower >= specificity)
    warnings.warn(f"the human error rates did not settle in {max_rounds} rounds: the promise is re-stated with the "
                  f"known answers of the last policy's band (sensitivity >= {tuned.report_.sensitivity_lower:.4f}, "
                  f"specificity >= {tuned.report_.specificity_lower:.4f})", TriageWarning, stacklevel=2)
    return tuned
