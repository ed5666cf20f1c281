"""Each project's standing under a policy, for ``tune``, ``retrain``, the Thresholds page and the dashboard.

A project is **validated** when its own human answers show that each side the policy decides keeps
the promise there (``core.policy.gate``), **gated** until then, and **drifted** when its current stacks no
longer look like its reference (``core.policy.drift``). The standing is computed whenever a policy is
saved (``triage_app.tuning.save_thresholds``) and stored with it (``db.project_status``); the
queue and the export read it from there.

The project's answers are the human standard with scores from the predictor that decides new
stacks: crowd labels of stacks scored out of fold or held out (the tuning reference), and the
answers reviewers gave to stacks the queue drew at random from the project to validate it
(``review.gate``). Other reviews are left out: the queue serves them by score (near the decision
boundary), so they are not a fair sample of the project's stacks and would flatter it.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from core.labels.records import REFERENCE_ROLES
from core.policy.drift import drift_tests, drifted_projects
from core.policy.gate import STATUSES, gate_projects
from db.audit import record_event
from db.policy import active_policy
from db.project_status import (STATUS_COLUMNS, gate_review_counts, project_status, save_project_status,
                               stack_features)


def project_answers(features: pd.DataFrame) -> pd.DataFrame:
    """The gate's answers from :func:`db.project_status.stack_features`: crowd labels of reference-scored
    stacks, else gate-served answers; columns of ``features`` plus ``answer`` and ``source``."""
    crowd = features["label"].notna() & features["role"].isin(REFERENCE_ROLES)
    gate = features["label"].isna() & features["gate_answer"].notna()
    answers = features[crowd | gate].copy()
    answers["answer"] = answers["label"].fillna(answers["gate_answer"]).astype(int)
    answers["source"] = np.where(crowd[crowd | gate], "crowd", "review")
    return answers


def project_standing(session: Session, *, model_run_id: int, t_low: float | None, t_high: float | None,
                     sensitivity: float, specificity: float, confidence: float,
                     since: datetime | None = None) -> pd.DataFrame:
    """One row per project of the run's scored stacks: the gate and the drift check under a policy.

    ``since`` restricts the drift check's current stacks to those ingested after it (e.g. when the
    policy was tuned). Columns: ``db.project_status.STATUS_COLUMNS`` (``details``: the gate's
    per-side counts and the drift tests, JSON-ready).
    """
    features = stack_features(session, model_run_id=model_run_id)
    answers = project_answers(features)
    gates = gate_projects(answers, t_low=t_low, t_high=t_high, sensitivity=sensitivity, specificity=specificity,
                          confidence=confidence, projects=sorted(set(features["project"])))
    current = features[features["label"].isna() & features["gate_answer"].isna()]
    if since is not None:
        current = current[pd.to_datetime(current["ingested_at"], utc=True) > pd.Timestamp(since)]
    tests = drift_tests(answers, current)
    drifted = drifted_projects(tests)
    fresh = {gate.project: gate for gate in gate_projects(  # re-validation rests on answers to its current stacks
        answers[answers["source"] == "review"], t_low=t_low, t_high=t_high, sensitivity=sensitivity,
        specificity=specificity, confidence=confidence, projects=sorted(drifted),
        pooled_share=float(answers["answer"].mean()) if len(answers) else None)}
    reviews = gate_review_counts(session)
    rows = []
    for gate in gates:
        row = gate.as_dict()
        alarm = drifted.get(gate.project)
        needed = fresh[gate.project].stacks_needed if alarm else gate.stacks_needed
        project_tests = tests[tests["project"] == gate.project].drop(columns="project")
        details = {key: _plain(value) for key, value in row.items() if key not in ("project", "reason", "status")}
        details["drift"] = [{key: _plain(value) for key, value in test.items()}
                            for test in project_tests.to_dict("records")]
        rows.append({"project_id": gate.project, "status": "drifted" if alarm else gate.status,
                     "low_open": gate.low_open and not alarm, "high_open": gate.high_open and not alarm,
                     "answered": gate.answered, "stalled": gate.stalled, "stacks_needed": needed,
                     "gate_reviews": reviews.get(gate.project, 0),
                     "reason": (f"{alarm}; paused until re-validated on about {needed:,} answers to its current "
                                f"stacks; before: {gate.reason()}") if alarm else gate.reason(),
                     "details": details})
    return pd.DataFrame(rows, columns=list(STATUS_COLUMNS))


def _plain(value: object) -> object:
    """A JSON-ready scalar (numpy numbers as Python ones, NaN as None)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    return value


def standing_table(standing: pd.DataFrame) -> pd.DataFrame:
    """The standing for people: project, status, which sides decide, answers, answers still needed, why."""
    sides = np.select([standing["low_open"] & standing["high_open"], standing["low_open"], standing["high_open"]],
                      ["both", "t_low", "t_high"], "none")
    return pd.DataFrame({"project": standing["project_id"].replace("", "(none)"), "status": standing["status"],
                         "decides": sides, "answered": standing["answered"], "stalled": standing["stalled"],
                         "answers still needed": standing["stacks_needed"], "reason": standing["reason"]})


def summary(standing: pd.DataFrame) -> str:
    """One line: ``"projects: 2 validated, 1 gated (about 44 more answered stacks), 1 drifted"``."""
    counts = standing["status"].value_counts()
    parts = []
    for status in STATUSES:
        if counts.get(status, 0):
            part = f"{counts[status]} {status}"
            if status != "validated":
                needed = int(standing.loc[standing["status"] == status, "stacks_needed"].sum())
                part += f" (about {needed:,} more answered stacks)"
            parts.append(part)
    return "projects: " + (", ".join(parts) if parts else "none scored")


def active_table(session: Session) -> pd.DataFrame | None:
    """The active policy's stored standing for people (:func:`standing_table`); None when no policy is
    active or it was saved without the gate (it then decides every project alike)."""
    policy = active_policy(session)
    if policy is None or not policy.project_gate:
        return None
    return standing_table(project_status(session, policy_id=policy.id))


def pause_drifted(session: Session, *, actor: str) -> dict[str, str]:
    """Check the active policy's projects for drift on the stacks ingested since it was saved, and
    pause the ones that drifted: their stored standing becomes ``drifted`` (neither side decides
    their stacks), audited as ``project.drift``. Returns project → reason for the newly paused ones;
    nothing without an active policy saved with the gate. Re-opening a project is a new tune's job."""
    policy = active_policy(session)
    if policy is None or not policy.project_gate:
        return {}
    standing = project_standing(session, model_run_id=policy.model_run_id, t_low=policy.t_low, t_high=policy.t_high,
                                sensitivity=policy.target_sensitivity or 0.99,
                                specificity=policy.target_specificity or 0.95, confidence=policy.confidence or 0.95,
                                since=policy.created_at)
    stored = project_status(session, policy_id=policy.id).set_index("project_id")["status"]
    paused = standing[(standing["status"] == "drifted") & (standing["project_id"].map(stored) != "drifted")]
    if paused.empty:
        return {}
    save_project_status(session, policy_id=policy.id, rows=paused.to_dict("records"), every=False)
    reasons = dict(zip(paused["project_id"], paused["reason"]))
    record_event(session, actor=actor, action="project.drift", entity="triage_policy", entity_id=policy.id,
                 details=reasons)
    return reasons
