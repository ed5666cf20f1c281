"""Tuning the triage thresholds for the ``tune`` command and the Thresholds page (session-level, no Streamlit).

What the promise rests on, in one place:

* **the reference**: every crowd-labelled stack whose score for the run comes from the predictor
  that will score new stacks without having trained on it: role ``out_of_fold`` or ``held_out``
  (see ``db.models.PREDICTION_ROLES``). Tier 1 and the other tiers alike: the policy decides hard
  stacks too. Labelled stacks whose score has role ``new`` (labelled after scoring, or scored by
  a run from before roles were recorded) are counted and left out;
* **the humans**: the error rates of the final human label of a routed stack, from the answers to
  known-answer stacks (``db.known_answers``), or the stated prior of ``core.skill`` when there are
  none yet; never perfection.

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

from core.skill import DawidSkene, HumanErrorRates
from core.triage import PolicyReport, TriageWarning, TunedTriagePolicy, decide, evaluate_policy
from db import known_answers, policy as policies, predictions, queue
from db.models import TriagePolicy

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_REVIEW = 20.0
REFERENCE_ROLES = ("out_of_fold", "held_out")


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


def human_error_model(session: Session, *, reviews_required: int = 1) -> HumanErrorRates:
    """What the final human label of a routed stack gets wrong, from the known-answer reviews.

    With k = 1 each known-answer review is one final label. With k > 1 a known-answer stack
    answered by at least k reviewers counts once, with the skill-weighted (Dawid–Skene) label of
    its first k answers alone (more answers than a routed stack gets would flatter the humans);
    when no stack has k such answers, single reviews are used (a single reviewer errs at least as
    often as k together, so the bound stays on the safe side). Without known-answer reviews: the
    stated prior of ``core.skill``.
    """
    reviews = known_answers.known_answer_reviews(session)
    if reviews.empty:
        return HumanErrorRates.prior()
    if reviews_required > 1:
        first = reviews.groupby("filename", sort=False).head(reviews_required)  # as many as a routed stack gets
        enough = first[first.groupby("filename")["answer"].transform("size") == reviews_required]
        if not enough.empty:
            long = enough.rename(columns={"filename": "stack", "user": "reviewer"})
            truth = enough.groupby("filename")["truth"].first()
            model = DawidSkene().fit(long[["stack", "reviewer", "answer"]], truth.rename_axis("stack"))
            labels = model.predict(long[["stack", "reviewer", "answer"]])
            return HumanErrorRates.from_known_answers(labels.to_numpy(), truth.loc[labels.index].to_numpy())
    return HumanErrorRates.from_known_answers(reviews["answer"].to_numpy(), reviews["truth"].to_numpy(),
                                              reviewers=reviews["user"].to_numpy())


def describe_humans(report: PolicyReport) -> str:
    """One line on the human side of a report's bounds: what the error rates rest on and their values."""
    rates = (f"miss rate {report.human_miss_rate:.3f} (bound {report.human_miss_upper:.3f}), false-alarm rate "
             f"{report.human_false_alarm_rate:.3f} (bound {report.human_false_alarm_upper:.3f})")
    if report.human_basis == HumanErrorRates.prior().basis:
        return f"no known-answer reviews yet: human error from the prior ({rates})"
    return f"human error from {report.human_basis}: {rates}"


def evaluate(reference: pd.DataFrame, *, t_low: float | None, t_high: float | None, confidence: float,
             human_errors: HumanErrorRates) -> PolicyReport:
    """What a policy does on the reference set (model where automatic, humans at their error rates elsewhere)."""
    return evaluate_policy(reference["probability"].to_numpy(float), reference["label"].to_numpy(int), t_low, t_high,
                           human_errors=human_errors, confidence=confidence)


@dataclass(frozen=True)
class TuneOutcome:
    """A tuned policy with the warnings it raised."""

    tuned: TunedTriagePolicy
    warnings: list[str]


def tune(reference: pd.DataFrame, *, sensitivity: float, specificity: float, confidence: float,
         human_errors: HumanErrorRates) -> TuneOutcome:
    """Fit :class:`~core.triage.TunedTriagePolicy` on a reference frame, collecting its warnings."""
    if reference.empty:
        raise ValueError("no crowd-labelled stacks with out-of-fold or held-out scores: nothing to tune on")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TriageWarning)
        tuned = TunedTriagePolicy(sensitivity=sensitivity, specificity=specificity, confidence=confidence,
                                  human_errors=human_errors).fit(reference["probability"].to_numpy(float),
                                                                 reference["label"].to_numpy(int))
    return TuneOutcome(tuned=tuned, warnings=[str(w.message) for w in caught if issubclass(w.category, TriageWarning)])


def save_thresholds(session: Session, *, model_run_id: int, t_low: float | None, t_high: float | None,
                    reviews_required: int, sensitivity: float, specificity: float, confidence: float,
                    actor: str) -> TriagePolicy:
    """Store thresholds (tuned, or chosen on the Thresholds page) as the active policy, audited by ``db.policy``.

    A side that decides nothing is ``None`` (stored as NULL). The queue reads the active policy on
    every claim, so review is re-routed at once.

    Raises
    ------
    ValueError
        Thresholds that break :func:`core.triage.validate_thresholds`'s rule.
    """
    return policies.save_policy(session, model_run_id=model_run_id, t_low=t_low, t_high=t_high,
                                reviews_required=reviews_required, target_sensitivity=sensitivity,
                                target_specificity=specificity, confidence=confidence, created_by=actor)


def project_breakdown(reference: pd.DataFrame, *, t_low: float | None, t_high: float | None, confidence: float,
                      human_errors: HumanErrorRates) -> pd.DataFrame:
    """Per project under a policy: stacks, stalls, automatic share, counted misses and false alarms,
    sensitivity and specificity with their lower bounds (human errors included)."""
    rows = []
    for project, group in reference.groupby("project_id", dropna=False):
        report = evaluate(group, t_low=t_low, t_high=t_high, confidence=confidence, human_errors=human_errors)
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
    human_errors: HumanErrorRates
    outcome: TuneOutcome | None
    all_probabilities: np.ndarray
    current: tuple[float | None, float | None] | None
    seconds_per_review: float
    known_answer_rate: float


def thresholds_data(session: Session, *, model_run_id: int, sensitivity: float, specificity: float,
                    confidence: float, reviews_required: int = 1) -> ThresholdsData:
    """The reference set, the human error model, the tuned policy (None without both classes), every
    score of the run, the active policy's thresholds when it is for this run, the median review
    time and the known-answer rate."""
    reference = tuning_reference(session, model_run_id=model_run_id)
    human_errors = human_error_model(session, reviews_required=reviews_required)
    scores = predictions.predictions_frame(session, model_run_id=model_run_id)["probability"].to_numpy(float)
    active = policies.active_policy(session)
    current = (active.t_low, active.t_high) if active is not None and active.model_run_id == model_run_id else None
    frame = reference.frame
    outcome = None
    if not frame.empty and frame["label"].nunique() == 2:
        outcome = tune(frame, sensitivity=sensitivity, specificity=specificity, confidence=confidence,
                       human_errors=human_errors)
    return ThresholdsData(reference=reference, human_errors=human_errors, outcome=outcome, all_probabilities=scores,
                          current=current, seconds_per_review=median_review_seconds(session),
                          known_answer_rate=known_answers.known_answer_rate(session))
