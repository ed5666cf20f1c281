"""Tuning the triage thresholds for the ``tune`` command and the Thresholds page (no Streamlit).

The reference set, the tuner's outcome with its warnings, what a policy does per project and to
the review queue, and saving a chosen policy.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from core.metrics import binary_report
from core.triage import Decision, PolicyReport, TriageWarning, TunedTriagePolicy, decide, evaluate_policy
from db import app_queries, policy as policies, predictions, queue
from db.engine import run_transaction
from triage_app.services import Backend, SessionUser

log = logging.getLogger(__name__)

DEFAULT_SECONDS_PER_REVIEW = 20.0

@dataclass(frozen=True)
class TuningReference:
    """Stacks usable for tuning one model run, and what was left out."""

    frame: pd.DataFrame
    """filename, project_id, probability, label (crowd or agreed human), human (reviews' majority or NA)."""
    in_sample: int
    """Labelled training stacks whose score is not out-of-fold (possibly in-sample: never used)."""


def tuning_reference(session: Session, *, model_run_id: int) -> TuningReference:
    """The reference set for tuning a run's thresholds.

    A stack counts when it has a reference label (the crowd's, else the majority of its human
    reviews) and a score the model never trained on: out-of-fold for training stacks, any score
    for test stacks. Human answers ride along: human-routed stacks are judged by them.
    """
    frame = predictions.predictions_frame(session, model_run_id=model_run_id)
    humans = app_queries.human_labels(session)[["filename", "human"]]
    frame = frame.merge(humans, on="filename", how="left")
    frame["human"] = frame["human"].astype("Int64")
    frame["label"] = frame["label"].fillna(frame["human"])
    labelled = frame[frame["label"].notna()]
    held_out = labelled["role"].isin(("out_of_fold", "held_out")) | (labelled["split"] == "test")
    in_sample = int((~held_out).sum())
    if in_sample:
        log.warning("%d labelled stacks have no out-of-fold score for run %d; they are not used for tuning",
                    in_sample, model_run_id)
    reference = labelled[held_out].reset_index(drop=True)
    reference["label"] = reference["label"].astype(int)
    return TuningReference(frame=reference, in_sample=in_sample)


def human_answers(reference: pd.DataFrame) -> np.ndarray:
    """The reference frame's human answers as floats, NaN where no review decided."""
    return reference["human"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def evaluate(reference: pd.DataFrame, *, t_low: float, t_high: float, confidence: float) -> PolicyReport:
    """What a policy does on the reference set (combined model + human labels)."""
    return evaluate_policy(reference["probability"].to_numpy(float), reference["label"].to_numpy(int), t_low, t_high,
                           human=human_answers(reference), confidence=confidence)


@dataclass(frozen=True)
class TuneOutcome:
    """A tuned policy with the warnings it raised."""

    tuned: TunedTriagePolicy
    warnings: list[str]


def tune(reference: pd.DataFrame, *, sensitivity: float, specificity: float, confidence: float) -> TuneOutcome:
    """Fit :class:`~core.triage.TunedTriagePolicy` on a reference frame, collecting its warnings."""
    if reference.empty:
        raise ValueError("no labelled stacks with out-of-fold or held-out scores: nothing to tune on")
    human = human_answers(reference)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TriageWarning)
        tuned = TunedTriagePolicy(sensitivity=sensitivity, specificity=specificity, confidence=confidence).fit(
            reference["probability"].to_numpy(float), reference["label"].to_numpy(int), human)
    return TuneOutcome(tuned=tuned, warnings=[str(w.message) for w in caught if issubclass(w.category, TriageWarning)])


def storable_thresholds(t_low: float, t_high: float) -> tuple[float, float]:
    """Thresholds clamped into [0, 1], for number inputs (0 <= t_low <= t_high <= 1).

    An infinite side (that side decides nothing) becomes 0 or 1; :func:`save_tuned` stores such
    a side as NULL, which decides nothing.
    """
    return max(0.0, min(1.0, t_low)), min(1.0, max(0.0, t_high))


def save_tuned(session: Session, *, model_run_id: int, outcome: TuneOutcome, actor: str,
               reviews_required: int = 1):  # noqa: ANN201 - returns db.models.TriagePolicy
    """Store a tuned policy as the active one (audited by ``db.policy``)."""
    tuned = outcome.tuned
    if not tuned.feasible_:
        raise ValueError("no policy meets the targets; the active policy is unchanged")
    t_low, t_high = storable_thresholds(tuned.t_low_, tuned.t_high_)
    return policies.save_policy(session, model_run_id=model_run_id,
                                t_low=None if math.isinf(tuned.t_low_) else t_low,
                                t_high=None if math.isinf(tuned.t_high_) else t_high,
                                reviews_required=reviews_required, target_sensitivity=tuned.sensitivity,
                                target_specificity=tuned.specificity, confidence=tuned.confidence,
                                created_by=actor)


def save_policy(backend: Backend, admin: SessionUser, *, model_run_id: int, t_low: float, t_high: float,
                reviews_required: int, sensitivity: float, specificity: float, confidence: float) -> int:
    """Save thresholds chosen on the Thresholds page as the active policy (audited); its id.

    The queue reads the active policy on every claim, so review is re-routed at once.
    """
    def work(session: Session) -> int:
        saved = policies.save_policy(session, model_run_id=model_run_id, t_low=t_low, t_high=t_high,
                                     reviews_required=reviews_required, target_sensitivity=sensitivity,
                                     target_specificity=specificity, confidence=confidence, created_by=admin.name)
        return saved.id

    return run_transaction(backend.factory, work, write=True)


def project_breakdown(reference: pd.DataFrame, *, t_low: float, t_high: float, confidence: float) -> pd.DataFrame:
    """Per project under a policy: stacks, stalls, automatic share, misses, false alarms,
    sensitivity and specificity with their lower bounds (combined model + human labels)."""
    rows = []
    for project, group in reference.groupby("project_id", dropna=False):
        decision = decide(group["probability"].to_numpy(float), t_low, t_high)
        human = human_answers(group)
        label = group["label"].to_numpy(int)
        answer = np.where(np.isnan(human), label, human).astype(int)
        combined = np.where(decision == Decision.HUMAN, answer, decision)
        report = binary_report(label, combined, confidence=confidence)
        rows.append({"project": project, "stacks": len(group), "stalled": int(label.sum()),
                     "automatic": float((decision != Decision.HUMAN).mean()), "misses": report.fn,
                     "false_alarms": report.fp, "sensitivity": report.sensitivity,
                     "sensitivity_lower": report.sensitivity_lower, "specificity": report.specificity,
                     "specificity_lower": report.specificity_lower})
    return pd.DataFrame(rows)


def queue_preview(probabilities: np.ndarray, *, current: tuple[float, float] | None, proposed: tuple[float, float],
                  seconds_per_review: float = DEFAULT_SECONDS_PER_REVIEW, reviews_required: int = 1) -> pd.DataFrame:
    """What a proposed policy does to all of a run's stacks, next to the current one.

    Rows: auto flowing, auto stalled, to humans, human hours; columns: current, proposed, change.
    With no current policy every scored stack goes to humans (as the queue does).
    """
    probabilities = np.asarray(probabilities, dtype=float)

    def counts(thresholds: tuple[float, float] | None) -> list[float]:
        if thresholds is None:
            return [0, 0, len(probabilities), len(probabilities) * reviews_required * seconds_per_review / 3600]
        t_low, t_high = thresholds
        flowing = int((probabilities <= t_low).sum())
        stalled = int((probabilities >= t_high).sum())
        human = len(probabilities) - flowing - stalled
        return [flowing, stalled, human, human * reviews_required * seconds_per_review / 3600]

    frame = pd.DataFrame({"current": counts(current), "proposed": counts(proposed)},
                         index=["auto flowing", "auto stalled", "to humans", "human hours"])
    frame["change"] = frame["proposed"] - frame["current"]
    return frame


def median_review_seconds(session: Session) -> float:
    """Median time reviewers took per stack so far (a default when there are no reviews)."""
    seconds = queue.reviews_frame(session)["seconds"].dropna()
    value = float(seconds.median()) if len(seconds) else math.nan
    return value if math.isfinite(value) and value > 0 else DEFAULT_SECONDS_PER_REVIEW


def model_runs(backend: Backend) -> dict[int, str]:
    """Model runs, newest first, as id -> display name."""
    with backend.factory() as session:
        return {run.id: f"{run.name} (run {run.id})" for run in predictions.list_model_runs(session)}


@dataclass(frozen=True)
class ThresholdsData:
    """Everything the Thresholds page shows for one run and one set of targets."""

    reference: pd.DataFrame
    in_sample: int
    outcome: TuneOutcome | None
    all_probabilities: np.ndarray
    current: tuple[float, float] | None
    seconds_per_review: float


def thresholds_page_data(backend: Backend, *, model_run_id: int, sensitivity: float, specificity: float,
                         confidence: float) -> ThresholdsData:
    """The reference set, the tuned policy (None without both classes), every score of the run,
    the active policy's thresholds when it is for this run, and the median review time."""
    with backend.factory() as session:
        reference = tuning_reference(session, model_run_id=model_run_id)
        scores = predictions.predictions_frame(session, model_run_id=model_run_id)["probability"].to_numpy(float)
        active = policies.active_policy(session)
        current = None
        if active is not None and active.model_run_id == model_run_id:  # a NULL side decides nothing
            current = (-math.inf if active.t_low is None else active.t_low,
                       math.inf if active.t_high is None else active.t_high)
        seconds = median_review_seconds(session)
    frame = reference.frame
    outcome = None
    if not frame.empty and frame["label"].nunique() == 2:
        outcome = tune(frame, sensitivity=sensitivity, specificity=specificity, confidence=confidence)
    return ThresholdsData(reference=frame, in_sample=reference.in_sample, outcome=outcome, all_probabilities=scores,
                          current=current, seconds_per_review=seconds)
