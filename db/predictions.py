"""Model runs and their per-stack predictions.

A model run is one trained ensemble, named by its run directory. ``stalltriage predict`` stores
one row per stack for the run; storing again replaces the run's rows for the stacks scored,
within the caller's transaction, so readers see either the old rows or the new ones, never a
mix. Rows of stacks not scored this time stay (``predict --split test`` after ``--split all``
keeps the training stacks' out-of-fold scores, which tuning needs).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from db.models import PREDICTION_ROLES, CrowdAnswer, ModelRun, Prediction, Vessel, utcnow
from db.queue_levels import refresh_review_levels
from db.vessels import BATCH, ImportReport, RowIssue

PREDICTION_COLUMNS = ("filename", "probability", "spread", "role", "fold")


def upsert_model_run(session: Session, *, name: str, arch: str | None = None, params: dict[str, Any] | None = None,
                     metrics: dict[str, Any] | None = None, threshold: float | None = None,
                     checkpoint_path: str | None = None) -> ModelRun:
    """Get the run called ``name`` (creating it if new) and update its description.

    Parameters
    ----------
    name
        Unique name, conventionally the run directory's resolved path.
    arch, params, metrics, threshold, checkpoint_path
        Architecture name, training configuration, out-of-fold metrics, the decision threshold
        chosen on out-of-fold predictions and where the checkpoints are; None leaves a value as is.
    """
    run = session.scalar(select(ModelRun).where(ModelRun.name == name))
    if run is None:
        run = ModelRun(name=name, params={}, metrics={})
        session.add(run)
    for attribute, value in (("arch", arch), ("params", params), ("metrics", metrics),
                             ("threshold", threshold), ("checkpoint_path", checkpoint_path)):
        if value is not None:
            setattr(run, attribute, value)
    session.flush()
    return run


def get_model_run(session: Session, *, name: str | None = None, run_id: int | None = None) -> ModelRun | None:
    """The run with this name or id; with neither, the newest run. None when there is none."""
    query = select(ModelRun)
    if name is not None:
        query = query.where(ModelRun.name == name)
    if run_id is not None:
        query = query.where(ModelRun.id == run_id)
    return session.scalar(query.order_by(ModelRun.id.desc()).limit(1))


def list_model_runs(session: Session) -> list[ModelRun]:
    """Every model run, newest first."""
    return list(session.scalars(select(ModelRun).order_by(ModelRun.id.desc())))


def _valid_prediction(row: dict[str, Any]) -> str | None:
    probability, spread, fold = row["probability"], row["spread"], row["fold"]
    if probability is None or not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
        return f"probability {probability!r} is not in [0, 1]"
    if spread is not None and (not math.isfinite(spread) or spread < 0):
        return f"spread {spread!r} is not a finite non-negative number"
    if row["role"] not in PREDICTION_ROLES:
        return f"role {row['role']!r} is not one of {', '.join(PREDICTION_ROLES)}"
    if fold is not None and (not float(fold).is_integer() or fold < 0):
        return f"fold {fold!r} is not a non-negative whole number"
    return None


def _with_roles(predictions: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``role`` and ``fold``; a frame from before roles (an ``out_of_fold`` flag) is translated."""
    if "role" in predictions.columns or "out_of_fold" not in predictions.columns:
        return predictions
    return predictions.assign(role=predictions["out_of_fold"].map({True: "out_of_fold", False: "new"}),
                              fold=predictions.get("fold"))


def replace_predictions(session: Session, *, model_run_id: int, predictions: pd.DataFrame,
                        source: str = "predictions") -> ImportReport:
    """Store a run's predictions, replacing its earlier rows for the same stacks (atomic in the caller's transaction).

    Parameters
    ----------
    predictions
        Columns ``filename``, ``probability``, ``spread``, ``role`` (one of
        :data:`db.models.PREDICTION_ROLES`) and ``fold`` (the out-of-fold member's fold, else
        missing): the frame that ``core.predict`` returns.
    source
        Named in issues (e.g. the run directory).

    Returns
    -------
    ImportReport
        ``added`` rows written; issues for unknown filenames and invalid values (those rows are
        skipped, every other row is written).
    """
    predictions = _with_roles(predictions)
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise ValueError(f"{source}: predictions lack columns {missing}")
    report = ImportReport()
    frame = predictions.loc[:, list(PREDICTION_COLUMNS)].astype(object)
    frame = frame.where(pd.notna(frame), None)
    records = frame.to_dict("records")
    now = utcnow()
    seen: set[str] = set()
    for start in range(0, len(records), BATCH):
        batch = records[start:start + BATCH]
        ids = dict(session.execute(select(Vessel.filename, Vessel.id)
                                   .where(Vessel.filename.in_({str(r["filename"]) for r in batch}))).all())
        rows = []
        for row in batch:
            filename = str(row["filename"])
            problem = ("not in the database (ingest it first)" if filename not in ids
                       else "appears twice; first kept" if filename in seen else _valid_prediction(row))
            if problem:
                report.issues.append(RowIssue(source, None, filename, f"prediction skipped: {problem}"))
                continue
            seen.add(filename)
            rows.append({"model_run_id": model_run_id, "vessel_id": ids[filename],
                         "probability": float(row["probability"]),
                         "spread": None if row["spread"] is None else float(row["spread"]),
                         "role": row["role"], "fold": None if row["fold"] is None else int(row["fold"]),
                         "created_at": now})
        session.execute(delete(Prediction).where(Prediction.model_run_id == model_run_id,
                                                 Prediction.vessel_id.in_([row["vessel_id"] for row in rows])))
        if rows:
            session.execute(insert(Prediction), rows)
            refresh_review_levels(session, vessel_ids=[row["vessel_id"] for row in rows], model_run_id=model_run_id)
        report.added += len(rows)
    return report


def predictions_frame(session: Session, *, model_run_id: int) -> pd.DataFrame:
    """A run's predictions with what is known about each stack, for tuning and charts.

    Columns: filename, project_id, split, probability, spread, role, fold, label, crowd_score, tier1.
    """
    query = (select(Vessel.filename, Vessel.project_id, Vessel.split, Prediction.probability, Prediction.spread,
                    Prediction.role, Prediction.fold, CrowdAnswer.label, CrowdAnswer.crowd_score, CrowdAnswer.tier1)
             .join(Vessel, Vessel.id == Prediction.vessel_id)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Vessel.id)
             .where(Prediction.model_run_id == model_run_id).order_by(Vessel.filename))
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["label"] = frame["label"].astype("Int64")
    frame["fold"] = frame["fold"].astype("Int64")
    return frame
