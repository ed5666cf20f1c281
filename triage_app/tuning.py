"""Tuning the triage thresholds for the ``tune`` command and the Thresholds page (session-level, no Streamlit).

Which promise (``core.policy.promise``): ``relative`` by default (the automatic decisions against the
human standard, the reference labels; no human-error model needed), ``absolute`` on request
(against the truth, human error counted). Every outcome carries both readings of the chosen policy
and, when the run scored unlabelled stacks, the check of the reference's stall share against
theirs (``core.policy.transfer``).

What the promise rests on, in one place:

* **the reference**: every crowd-labelled stack whose score for the run comes from the predictor
  that will score new stacks without having trained on it: role ``out_of_fold`` or ``held_out``
  (``core.labels.records.REFERENCE_ROLES``). Tier 1 and the other tiers alike: the policy decides
  hard stacks too. Labelled stacks whose score has role ``new`` (labelled after scoring, or scored by
  a run from before roles were recorded) are counted and left out;
* **the humans**: the error rates of the final human label of a routed stack, from the answers to
  the known-answer stacks (``db.known_answers``) whose score lies in the policy's own routed band
  (``core.policy.guarantee``), or the stated prior of ``core.labels.skill`` when there are none there; never
  perfection.

Page and command wrappers that open sessions live in ``triage_app.services``.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from core.labels.records import REFERENCE_ROLES
from core.labels.skill import ErrorRate, HumanErrorRates, out_of_fold_labels
from core.policy.frontier import more_data
from core.policy.guarantee import KnownAnswers, tune_with_known_answers
from core.policy.label_shift import estimate_stall_share
from core.policy.promise import DEFAULT_PROMISE, check_promise
from core.policy.transfer import ShareCheck, check_share
from core.policy.triage import PolicyReport, TriageWarning, TunedTriagePolicy, decide, evaluate_policy
from db import human_labels, known_answers, policy as policies, predictions, project_status, queue
from db.models import PolicyRecord

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_REVIEW = 20.0
MIN_NEW_STACKS = 50
"""Fewest unlabelled scored stacks for estimating their stall share (fewer: no share check)."""
ASSUMED_WEIGHT = 1e6
"""Pseudo-answers behind a stated human error rate: an assumption is taken at its word."""


@dataclass(frozen=True)
class TuningReference:
    """Stacks usable for tuning one model run, and what was left out."""

    frame: pd.DataFrame
    """filename, project_id, role, tier1, probability, label (the crowd's)."""
    left_out: int
    """Crowd-labelled stacks whose score has role ``new``: not from the predictor's unseen-stack side."""

    def composition(self) -> pd.DataFrame:
        """Stacks and stalls per role and tier (``tier 1`` / ``other``), for reports."""
        tier = np.where(self.frame["tier1"].fillna(False).astype(bool), "tier 1", "other")
        return (self.frame.assign(tier=tier).groupby(["role", "tier"])["label"].agg(stacks="size", stalled="sum")
                .reset_index())

    def describe(self) -> str:
        """One line: how many stacks (and stalls) by role and by tier, and what was left out."""
        table = self.composition()

        def counts(by: str, form: str) -> str:
            sums = table.groupby(by)[["stacks", "stalled"]].sum()
            return ", ".join(form.format(name=name, n=int(row.stacks), stalled=int(row.stalled))
                             for name, row in sums.iterrows())

        by_role = counts("role", "{n:,} {name} ({stalled:,} stalled)")
        by_tier = counts("tier", "{name}: {n:,} ({stalled:,} stalled)")
        text = (f"{len(self.frame):,} reference stacks ({int(self.frame['label'].sum()):,} stalled): "
                f"{by_role or 'none'}; {by_tier or 'no tiers'}")
        if self.left_out:
            text += f"; {self.left_out:,} labelled stacks scored as new left out"
        return text


def tuning_reference(session: Session, *, model_run_id: int) -> TuningReference:
    """The reference set for tuning a run's thresholds: crowd-labelled stacks scored out of fold or held out."""
    frame = predictions.predictions_frame(session, model_run_id=model_run_id)
    labelled = frame[frame["label"].notna()]
    usable = labelled["role"].isin(REFERENCE_ROLES)
    left_out = int((~usable).sum())
    if left_out:
        log.warning("%d labelled stacks of run %d are scored as new; they are not used for tuning",
                    left_out, model_run_id)
    reference = labelled.loc[usable, ["filename", "project_id", "role", "tier1", "probability", "label"]]
    reference = reference.reset_index(drop=True).astype({"label": int})
    return TuningReference(frame=reference, left_out=left_out)


def known_answers_for(session: Session, *, model_run_id: int, reviews_required: int = 1) -> KnownAnswers | None:
    """The known-answer stacks as the humans answered them, placed by the run's scores (None without any).

    With k = 1 each known-answer review is one final human label. With k > 1 a known-answer stack
    answered by at least k reviewers counts once, with the skill-weighted (Dawid–Skene) label of
    its first k answers (more answers than a routed stack gets would flatter the humans), from a
    fit that never saw its known answer (``core.labels.skill.out_of_fold_labels``); while no stack has k
    answers, single reviews stand in (one reviewer errs at least as often as k together). Answers
    to stacks the run did not score are left out: they cannot be placed in or out of a band.
    """
    reviews = known_answers.known_answer_reviews(session, model_run_id=model_run_id).dropna(subset=["probability"])
    if reviews.empty:
        return None
    if reviews_required > 1:
        labels = _aggregated_labels(session, reviews, reviews_required)
        if labels is not None:
            return labels
    return KnownAnswers(score=reviews["probability"].to_numpy(float), label=reviews["answer"].to_numpy(),
                        truth=reviews["truth"].to_numpy(), reviewers=reviews["user"].to_numpy())


def _aggregated_labels(session: Session, reviews: pd.DataFrame, k: int) -> KnownAnswers | None:
    """One skill-weighted label per known-answer stack from its first k answers; None when no stack has k."""
    first = reviews.groupby("filename", sort=False).head(k)
    first = first[first.groupby("filename")["answer"].transform("size") == k]
    if first.empty:
        return None
    votes = human_labels.decisive_votes(session)
    regular = votes.loc[~votes["known_answer"].astype(bool), ["filename", "reviewer", "answer"]]
    fit_on = pd.concat([first.rename(columns={"user": "reviewer"})[["filename", "reviewer", "answer"]], regular])
    stacks = first.groupby("filename").agg(truth=("truth", "first"), score=("probability", "first"))
    labels = out_of_fold_labels(fit_on.rename(columns={"filename": "stack"}), stacks["truth"].rename_axis("stack"),
                                folds=min(5, len(stacks)))
    stacks = stacks.loc[labels.index]
    return KnownAnswers(score=stacks["score"].to_numpy(float), label=labels.to_numpy(),
                        truth=stacks["truth"].to_numpy())


def assumed_humans(sensitivity: float, specificity: float) -> HumanErrorRates:
    """Human error rates the user states (``--human-sensitivity/--human-specificity``): taken at
    their word (no uncertainty) and named "assumed" wherever a bound rests on them."""
    for name, value in (("human sensitivity", sensitivity), ("human specificity", specificity)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must lie in (0, 1], got {value}")

    def rate(error: float) -> ErrorRate:
        return ErrorRate(error * ASSUMED_WEIGHT, (1 - error) * ASSUMED_WEIGHT) if error > 0 else ErrorRate(0.0, 1.0)

    return HumanErrorRates(rate(1 - sensitivity), rate(1 - specificity),
                           f"assumed (stated, not measured): human sensitivity {sensitivity:g}, "
                           f"specificity {specificity:g}")


def human_error_rates(known: KnownAnswers | None, *, t_low: float | None, t_high: float | None,
                      assumed: HumanErrorRates | None = None) -> HumanErrorRates:
    """The human error rates an absolute promise rests on: a stated assumption if given, else the
    known answers in the policy's own routed band (``core.policy.guarantee``), else the stated prior."""
    if assumed is not None:
        return assumed
    return HumanErrorRates.prior() if known is None else known.rates(t_low, t_high)


def describe_humans(report: PolicyReport, known: KnownAnswers | None) -> str:
    """One line on the human side of a report's bounds: what the error rates rest on and their values."""
    rates = (f"miss rate {report.human_miss_rate:.3f} (bound {report.human_miss_upper:.3f}), false-alarm rate "
             f"{report.human_false_alarm_rate:.3f} (bound {report.human_false_alarm_upper:.3f})")
    if report.promise == "relative":
        return "relative promise: routed stacks keep the human answer (no human-error model needed)"
    if report.human_basis == HumanErrorRates.prior().basis:
        where = "yet" if known is None else "in this policy's routed band yet"
        return f"no known-answer reviews {where}: human error from the prior ({rates})"
    return f"human error from {report.human_basis}: {rates}"


def evaluate(reference: pd.DataFrame, *, t_low: float | None, t_high: float | None, confidence: float,
             known: KnownAnswers | None, promise: str = DEFAULT_PROMISE,
             assumed: HumanErrorRates | None = None) -> PolicyReport:
    """What a policy does on the reference set under ``promise``: the model where automatic,
    humans elsewhere (absolute: at the assumed rates, else those of the known answers in the
    policy's band, else the prior)."""
    return evaluate_policy(reference["probability"].to_numpy(float), reference["label"].to_numpy(int), t_low, t_high,
                           human_errors=human_error_rates(known, t_low=t_low, t_high=t_high, assumed=assumed),
                           confidence=confidence, promise=promise)


@dataclass(frozen=True)
class TuneOutcome:
    """A tuned policy with the warnings it raised, the other promise's reading of the same policy,
    what a larger reference would buy, and the stall-share check against the new stacks."""

    tuned: TunedTriagePolicy
    warnings: list[str]
    other: PolicyReport
    more: pd.DataFrame
    share: ShareCheck | None

    @property
    def promise(self) -> str:
        """The promise the policy was tuned for."""
        return self.tuned.report_.promise

    @property
    def saveable(self) -> bool:
        """The targets hold on the reference and, when checked, at the new stacks' share."""
        return bool(self.tuned.feasible_ and (self.share is None or self.share.holds))


def tune(reference: pd.DataFrame, *, sensitivity: float, specificity: float, confidence: float,
         known: KnownAnswers | None, promise: str = DEFAULT_PROMISE, assumed: HumanErrorRates | None = None,
         new_scores: np.ndarray | None = None) -> TuneOutcome:
    """Tune on a reference frame, collecting the tuner's warnings.

    ``relative``: :class:`~core.policy.triage.TunedTriagePolicy` with each threshold by fixed-sequence
    testing. ``absolute``: with a stated assumption or no known answers, the tuner at those rates
    (or the prior); with known answers :func:`core.policy.guarantee.tune_with_known_answers` (human error
    from the chosen policy's own routed band). ``new_scores`` (the run's unlabelled stacks) feed
    the stall-share check when there are at least :data:`MIN_NEW_STACKS`.
    """
    check_promise(promise)
    if reference.empty:
        raise ValueError("no crowd-labelled stacks with out-of-fold or held-out scores: nothing to tune on")
    scores, labels = reference["probability"].to_numpy(float), reference["label"].to_numpy(int)
    targets = {"sensitivity": sensitivity, "specificity": specificity, "confidence": confidence}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TriageWarning)
        if promise == "absolute" and known is not None and assumed is None:
            tuned = tune_with_known_answers(scores, labels, known, **targets)
        else:
            tuned = TunedTriagePolicy(**targets, promise=promise, human_errors=assumed).fit(scores, labels)
    other = evaluate(reference, t_low=tuned.t_low_, t_high=tuned.t_high_, confidence=confidence, known=known,
                     promise="absolute" if promise == "relative" else "relative", assumed=assumed)
    more = more_data(scores, labels, sensitivity=sensitivity, specificity=specificity, confidence=confidence)
    share = None
    if new_scores is not None and len(new_scores) >= MIN_NEW_STACKS:
        estimate = estimate_stall_share(scores, labels, np.asarray(new_scores, dtype=float), confidence=confidence)
        report = tuned.report_
        share = check_share(promise=promise, sensitivity_lower=report.sensitivity_lower,
                            specificity_lower=report.specificity_lower, estimate=estimate,
                            sensitivity=sensitivity, specificity=specificity,
                            humans=human_error_rates(known, t_low=None, t_high=None, assumed=assumed))
    return TuneOutcome(tuned=tuned, warnings=[str(w.message) for w in caught if issubclass(w.category, TriageWarning)],
                       other=other, more=more, share=share)


def shortfall(report: PolicyReport, *, sensitivity: float, specificity: float) -> str:
    """What a policy misses of its targets, in words ("" when it meets both): the CLI's refusal,
    the page's caption and its save confirmation."""
    return "; ".join(f"{name} bound {lower:.4f} < target {target:g}" for name, lower, target in (
        ("sensitivity", report.sensitivity_lower, sensitivity), ("specificity", report.specificity_lower, specificity))
        if lower < target)


def _threshold_text(value: float) -> str:
    return "off" if value is None or np.isnan(value) else f"{value:.4g}"


def frontier_table(outcome: TuneOutcome) -> pd.DataFrame:
    """The frontier for people: one row per distinct policy (the highest share it serves), shares
    and bounds rounded, thresholds as text ("off" = that side decides nothing)."""
    frame = outcome.tuned.frontier_.drop_duplicates(["t_low", "t_high"], keep="last")
    return pd.DataFrame({"automatic at least": frame["share"].map("{:.0%}".format),
                         "automatic": frame["auto_share"].map("{:.1%}".format),
                         "t_low": frame["t_low"].map(_threshold_text), "t_high": frame["t_high"].map(_threshold_text),
                         "sensitivity >=": frame["sensitivity_lower"].map("{:.4f}".format),
                         "specificity >=": frame["specificity_lower"].map("{:.4f}".format),
                         "meets targets": frame["meets"].map({True: "yes", False: "no"})})


def more_data_table(outcome: TuneOutcome) -> pd.DataFrame:
    """What a larger reference would buy, for people (see :func:`core.policy.frontier.more_data`)."""
    more = outcome.more
    return pd.DataFrame({"reference": more["scale"].map(lambda x: "as now" if x == 1 else f"x{x:g}"),
                         "stalled": more["stalled"].map("{:,}".format), "flowing": more["flowing"].map("{:,}".format),
                         "automatic": more["auto_share"].map("{:.1%}".format)})


def new_stack_scores(session: Session, *, model_run_id: int) -> np.ndarray:
    """The run's scores of stacks without a crowd label (the stacks the policy will decide)."""
    frame = predictions.predictions_frame(session, model_run_id=model_run_id)
    return frame.loc[frame["label"].isna(), "probability"].to_numpy(float)


def save_thresholds(session: Session, *, model_run_id: int, t_low: float | None, t_high: float | None,
                    reviews_required: int, sensitivity: float, specificity: float, confidence: float,
                    actor: str, promise: str = DEFAULT_PROMISE, stall_share: float | None = None,
                    standing: pd.DataFrame | None = None) -> PolicyRecord:
    """Store thresholds (tuned, or chosen on the Thresholds page) as the active policy, audited by
    ``db.policy``, with each project's standing under it (``triage_app.projects``; ``standing``
    when already computed for these thresholds): the policy decides a project's stacks only on
    the sides its validation gate opens. The one save path of the page (through
    ``triage_app.services``), ``stalltriage tune`` and a retrain.

    A side that decides nothing is ``None`` (stored as NULL). The queue reads the active policy on
    every claim, so review is re-routed at once.

    Raises
    ------
    DatabaseInputError
        Thresholds or k that break the band rule: :func:`db.policy.save_policy` validates, once,
        before anything is computed or stored.
    """
    from triage_app import projects  # it reads this module's reference roles

    policy = policies.save_policy(session, model_run_id=model_run_id, t_low=t_low, t_high=t_high,
                                  reviews_required=reviews_required, target_sensitivity=sensitivity,
                                  target_specificity=specificity, confidence=confidence, created_by=actor,
                                  promise=promise, stall_share=stall_share)
    if standing is None:
        standing = projects.project_standing(session, model_run_id=model_run_id, t_low=policy.t_low,
                                             t_high=policy.t_high, sensitivity=sensitivity, specificity=specificity,
                                             confidence=confidence)
    project_status.save_project_status(session, policy_id=policy.id, rows=standing.to_dict("records"))
    return policy


def project_breakdown(reference: pd.DataFrame, *, t_low: float | None, t_high: float | None, confidence: float,
                      known: KnownAnswers | None, promise: str = DEFAULT_PROMISE,
                      assumed: HumanErrorRates | None = None) -> pd.DataFrame:
    """Per project under a policy: stacks, stalls, automatic share, counted misses and false alarms,
    sensitivity and specificity with their lower bounds under ``promise``."""
    rows = []
    for project, group in reference.groupby("project_id", dropna=False):
        report = evaluate(group, t_low=t_low, t_high=t_high, confidence=confidence, known=known, promise=promise,
                          assumed=assumed)
        rows.append({"project": project, "stacks": report.n, "stalled": int(group["label"].sum()),
                     "automatic": report.auto_share, "misses": report.misses, "false_alarms": report.false_alarms,
                     "sensitivity": report.sensitivity, "sensitivity_lower": report.sensitivity_lower,
                     "specificity": report.specificity, "specificity_lower": report.specificity_lower})
    return pd.DataFrame(rows)


def queue_preview(probabilities: np.ndarray, *, current: tuple[float | None, float | None] | None,
                  proposed: tuple[float | None, float | None], seconds_per_review: float = DEFAULT_SECONDS_PER_REVIEW,
                  reviews_required: int = 1) -> pd.DataFrame:
    """What a proposed policy does to all of a run's stacks, next to the current one.

    Rows: auto flowing, auto stalled, to humans, human hours; columns: current, proposed, change.
    With no current policy every scored stack goes to humans (as the queue does).
    """
    probabilities = np.asarray(probabilities, dtype=float)
    hours = reviews_required * seconds_per_review / 3600

    def counts(thresholds: tuple[float | None, float | None] | None) -> list[float]:
        decision = decide(probabilities, None, None) if thresholds is None else decide(probabilities, *thresholds)
        flowing, stalled = int((decision == 0).sum()), int((decision == 1).sum())
        human = len(probabilities) - flowing - stalled
        return [flowing, stalled, human, human * hours]

    frame = pd.DataFrame({"current": counts(current), "proposed": counts(proposed)},
                         index=["auto flowing", "auto stalled", "to humans", "human hours"])
    frame["change"] = frame["proposed"] - frame["current"]
    return frame


def median_review_seconds(session: Session) -> float:
    """Median time reviewers took per stack so far (a default when there are no reviews)."""
    seconds = queue.reviews_frame(session)["seconds"].dropna()
    value = float(seconds.median()) if len(seconds) else math.nan
    return value if math.isfinite(value) and value > 0 else DEFAULT_SECONDS_PER_REVIEW


@dataclass(frozen=True)
class ThresholdsData:
    """Everything the Thresholds page shows for one run and one set of targets."""

    reference: TuningReference
    known: KnownAnswers | None
    outcome: TuneOutcome | None
    all_probabilities: np.ndarray
    current: tuple[float | None, float | None] | None
    seconds_per_review: float
    known_answer_rate: float
    promise: str


def thresholds_data(session: Session, *, model_run_id: int, sensitivity: float, specificity: float,
                    confidence: float, reviews_required: int = 1, promise: str = DEFAULT_PROMISE) -> ThresholdsData:
    """The reference set, the known answers, the tuned policy under ``promise`` (None without both
    classes), every score of the run, the active policy's thresholds when it is for this run, the
    median review time and the known-answer rate."""
    reference = tuning_reference(session, model_run_id=model_run_id)
    known = known_answers_for(session, model_run_id=model_run_id, reviews_required=reviews_required)
    frame_all = predictions.predictions_frame(session, model_run_id=model_run_id)
    scores = frame_all["probability"].to_numpy(float)
    active = policies.active_policy(session)
    current = (active.t_low, active.t_high) if active is not None and active.model_run_id == model_run_id else None
    frame = reference.frame
    outcome = None
    if not frame.empty and frame["label"].nunique() == 2:
        outcome = tune(frame, sensitivity=sensitivity, specificity=specificity, confidence=confidence, known=known,
                       promise=promise, new_scores=frame_all.loc[frame_all["label"].isna(), "probability"].to_numpy())
    return ThresholdsData(reference=reference, known=known, outcome=outcome, all_probabilities=scores,
                          current=current, seconds_per_review=median_review_seconds(session),
                          known_answer_rate=known_answers.known_answer_rate(session), promise=promise)
