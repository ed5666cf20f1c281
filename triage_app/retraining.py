"""Activating a retrained run only when its tuned policy is no worse (``stalltriage retrain``, the app's button).

After a retrained run's predictions are stored, its policy is tuned on the run's own reference
(every crowd-labelled stack it scored out of fold or held out, as ``stalltriage tune`` does) for
the active policy's targets, confidence and k, with the reviewers' error rates from the
known-answer stacks of the policy's routed band (``triage_app.tuning``). The new run and policy
become active only when

* the tuned policy's bounds meet the targets (human error included), and
* it decides at least as large a share automatically as the active policy does on the active
  run's reference (both references are the crowd-labelled stacks, so the shares compare like
  for like).

Otherwise the active policy stays and the reason is returned. Reviews go on meanwhile: claims
are on stacks, not runs, so a claim made under the old policy stays valid, and an answer stored
at any time is a row in ``review``; on activation the new run's queue bookkeeping
(``prediction.review_level``) is recomputed from the reviews in the same transaction, so a
review that arrived while the predictions were being written is counted.

The progress of a background retrain is a small JSON status file the app reads
(:func:`write_status`, :func:`read_status`); the app starts the command with
:func:`start_retrain` and charts :func:`policy_history`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.band import POLICY_BAND
from db.models import ModelRun, Prediction, Review, PolicyRecord
from db.policy import active_policy
from db.queue import queue_rule
from db.queue_levels import refresh_review_levels
from db.project_status import project_status
from triage_app import projects, tuning
from triage_app.settings import Settings

RUNNING_STATES = ("starting", "training", "scoring", "tuning")


@dataclass(frozen=True)
class ActivationOutcome:
    """What happened to a retrained run: activated or not, why, and the two automatic shares."""

    activated: bool
    reason: str
    new_auto_share: float | None
    old_auto_share: float | None
    policy_id: int | None = None


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def tune_and_activate(session: Session, *, model_run_id: int, actor: str = "retrain") -> ActivationOutcome:
    """Tune the run's policy like the active one and activate both when no worse (see the module docstring).

    Raises
    ------
    ValueError
        No active policy (nothing to keep the targets of).
    """
    old = active_policy(session)
    if old is None:
        raise ValueError("no active policy: tune one first (`stalltriage tune`), retrain keeps its targets")
    k = old.reviews_required
    targets = {"sensitivity": old.target_sensitivity or 0.99, "specificity": old.target_specificity or 0.95,
               "confidence": old.confidence or 0.95}
    old_reference = tuning.tuning_reference(session, model_run_id=old.model_run_id).frame
    old_share = None
    if not old_reference.empty:
        old_known = tuning.known_answers_for(session, model_run_id=old.model_run_id, reviews_required=k)
        old_share = tuning.evaluate(old_reference, t_low=old.t_low, t_high=old.t_high,
                                    confidence=targets["confidence"], known=old_known, promise=old.promise).auto_share
    reference = tuning.tuning_reference(session, model_run_id=model_run_id).frame
    known = tuning.known_answers_for(session, model_run_id=model_run_id, reviews_required=k)
    try:
        tuned = tuning.tune(reference, known=known, promise=old.promise, **targets).tuned
    except ValueError as error:
        return ActivationOutcome(False, f"cannot tune the new run: {error}", None, old_share)
    report = tuned.report_
    if not tuned.feasible_:
        return ActivationOutcome(False, f"the new run's best policy misses the targets (sensitivity bound "
                                        f"{report.sensitivity_lower:.4f}, specificity bound "
                                        f"{report.specificity_lower:.4f})", None, old_share)
    if old_share is not None and report.auto_share < old_share:
        return ActivationOutcome(False, f"the new policy decides {_share(report.auto_share)} automatically, less "
                                        f"than the active one's {_share(old_share)}", report.auto_share, old_share)
    policy = tuning.save_thresholds(session, model_run_id=model_run_id, t_low=tuned.t_low_, t_high=tuned.t_high_,
                                    reviews_required=k, actor=actor, promise=old.promise,
                                    stall_share=float(reference["label"].mean()), **targets)
    reviewed = session.scalars(select(Review.vessel_id).distinct()).all()
    refresh_review_levels(session, vessel_ids=reviewed, model_run_id=model_run_id)
    standing = projects.summary(project_status(session, policy_id=policy.id))
    return ActivationOutcome(True, f"activated: {_share(report.auto_share)} automatic (was {_share(old_share)}), "
                                   f"bounds meet the targets; {standing}", report.auto_share, old_share, policy.id)


def scoring_run(session: Session, vessel_id: int) -> str | None:
    """Name of the run whose score the queue uses for a stack (the active policy's run, else the newest),
    or None when that run did not score it."""
    rule = queue_rule(session)
    if rule is None:
        return None
    return session.scalar(select(ModelRun.name).join(Prediction, Prediction.model_run_id == ModelRun.id)
                          .where(ModelRun.id == rule.model_run_id, Prediction.vessel_id == vessel_id))


def status_path(data_dir: Path) -> Path:
    """Where a retrain started from the app reports its progress."""
    return Path(data_dir) / "retrain" / "status.json"


def write_status(path: Path, state: str, message: str, **extra: object) -> None:
    """Replace the status file atomically: ``state`` (starting, training, scoring, tuning, activated, kept,
    failed), a message, the time and this process id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"state": state, "message": message, "pid": os.getpid(),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def read_status(path: Path) -> dict | None:
    """The last status written, or None when no retrain has run (or the file is unreadable)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def is_running(status: dict | None) -> bool:
    """True while the retrain that wrote ``status`` is still at work (its process alive)."""
    if status is None or status.get("state") not in RUNNING_STATES:
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    return True


def start_retrain(settings: Settings, *, minutes: float) -> int:
    """Start ``stalltriage retrain`` in the background for these settings; returns its process id.

    Its output goes to ``retrain.log`` next to the status file; the app follows the status file.
    """
    status = status_path(settings.data_dir)
    status.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "triage_app.cli", "retrain", "--time-budget", f"{minutes:g}", "--db",
               settings.db_url, "--store", str(settings.store_path), "--data-dir", str(settings.data_dir),
               "--status", str(status)]
    with open(status.with_name("retrain.log"), "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    write_status(status, "starting", "started from the app", pid=process.pid)
    return process.pid


def policy_history(session: Session) -> pd.DataFrame:
    """Every saved policy, oldest first, with its run and the share of that run's scored stacks it decides
    automatically: created_at, policy_id, run, created_by, active, auto_share."""
    decided = case((POLICY_BAND.automatic(Prediction.probability), 1), else_=0)
    query = (select(PolicyRecord.created_at, PolicyRecord.id.label("policy_id"), ModelRun.name.label("run"),
                    PolicyRecord.created_by, PolicyRecord.active,
                    (func.sum(decided) * 1.0 / func.count(Prediction.vessel_id)).label("auto_share"))
             .join(ModelRun, ModelRun.id == PolicyRecord.model_run_id)
             .join(Prediction, Prediction.model_run_id == PolicyRecord.model_run_id)
             .group_by(PolicyRecord.id, PolicyRecord.created_at, ModelRun.name, PolicyRecord.created_by,
                       PolicyRecord.active)
             .order_by(PolicyRecord.created_at, PolicyRecord.id))
    result = session.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))
