"""Model runs and their per-stack predictions.

A model run is one trained ensemble, named by its run directory. ``stalltriage predict`` stores
one row per stack for the run; storing again replaces the run's rows for the stacks scored,
within the caller's transaction, so readers see either the old rows or the new ones, never a
mix. Rows of stacks not scored this time stay (``predict --split test`` after ``--split all``
keeps the training stacks' out-of-fold scores, which tuning needs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (Float, Insert, Integer, String, Table, bindparam, case, exists, func, select, true)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.labels.records import PREDICTION_ROLES
from db.bulk import analyze, frame_rows, staged
from db.models import CrowdAnswer, ModelRun, Prediction, Review, UTCDateTime, Stack, utcnow
from db.queue_levels import COUNTED
from db.second_look import reference_label
from db.vessels import ImportReport, RowIssue

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


def _problems(frame: pd.DataFrame) -> pd.Series:
    """Why each row cannot be stored (None when it can), checked column by column over the frame."""
    probability = pd.to_numeric(frame["probability"], errors="coerce")
    spread = pd.to_numeric(frame["spread"], errors="coerce")
    fold = pd.to_numeric(frame["fold"], errors="coerce")
    values = frame.astype(object).where(frame.notna(), None)
    checks = [
        (~probability.between(0.0, 1.0), lambda row: f"probability {row.probability!r} is not in [0, 1]"),
        (frame["spread"].notna() & ~(np.isfinite(spread) & (spread >= 0)),
         lambda row: f"spread {row.spread!r} is not a finite non-negative number"),
        (~frame["role"].isin(PREDICTION_ROLES),
         lambda row: f"role {row.role!r} is not one of {', '.join(PREDICTION_ROLES)}"),
        (frame["fold"].notna() & ~((fold % 1 == 0) & (fold >= 0)),
         lambda row: f"fold {row.fold!r} is not a non-negative whole number"),
    ]
    problems = pd.Series(None, index=frame.index, dtype=object)
    for failed, message in checks:
        failed &= problems.isna()
        problems[failed] = [message(row) for row in values[failed].itertuples()]
    return problems


_STAGE_TYPES = {"line": Integer(), "filename": String(255), "probability": Float(), "spread": Float(),
                "role": String(16), "fold": Integer()}


def replace_predictions(session: Session, *, model_run_id: int, predictions: pd.DataFrame,
                        source: str = "predictions") -> ImportReport:
    """Store a run's predictions, replacing its earlier rows for the same stacks (atomic in the caller's transaction).

    The rows are written set-based (staged, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``
    that also fills the queue bookkeeping), so a million rows take seconds, not hours.

    Parameters
    ----------
    predictions
        Columns ``filename``, ``probability``, ``spread``, ``role`` (one of
        :data:`core.labels.records.PREDICTION_ROLES`) and ``fold`` (the fold whose members scored the
        stack, or missing): the frame that ``core.model.predict`` returns.
    source
        Named in issues (e.g. the run directory).

    Returns
    -------
    ImportReport
        ``added`` rows written; issues for unknown filenames and invalid values (those rows are
        skipped, every other row is written), in the frame's row order.
    """
    missing = [column for column in PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise ValueError(f"{source}: predictions lack columns {missing}")
    frame = predictions.loc[:, list(PREDICTION_COLUMNS)].reset_index(drop=True)
    frame["filename"] = frame["filename"].astype(str)
    problems = _problems(frame)
    valid = problems.isna()
    twice = valid & frame["filename"].where(valid).duplicated()
    problems[twice] = "appears twice; first kept"
    stage = frame[valid & ~twice].assign(line=lambda rows: rows.index, fold=lambda rows: rows["fold"].astype("Int64"))
    with staged(session, "prediction", frame_rows(stage.loc[:, list(_STAGE_TYPES)]), _STAGE_TYPES) as rows:
        connection = session.connection()
        unknown = connection.execute(select(rows.c.line).where(~exists().where(Stack.filename == rows.c.filename)))
        unknown_lines = [line for line, in unknown]
        problems[unknown_lines] = "not in the database (ingest it first)"
        connection.execute(_upsert_statement(connection.dialect.name, rows),
                           {"run_id": model_run_id, "now": utcnow()})
    report = ImportReport(added=len(stage) - len(unknown_lines))
    report.issues = [RowIssue(source, None, frame.at[line, "filename"], f"prediction skipped: {problem}")
                     for line, problem in problems.dropna().items()]
    analyze(session, "prediction", report.added)
    return report


def _upsert_statement(dialect: str, rows: Table) -> Insert:
    """Write the staged rows of known stacks for run ``:run_id``, each with its review level."""
    counted = (select(Review.vessel_id, func.count().label("n")).where(COUNTED)
               .group_by(Review.vessel_id).subquery())
    level = case((CrowdAnswer.label.is_not(None), None), else_=func.coalesce(counted.c.n, 0))
    source = (select(bindparam("run_id", type_=Integer()), Stack.id, rows.c.probability, rows.c.spread,
                     rows.c.role, rows.c.fold, level, bindparam("now", type_=UTCDateTime()))
              .select_from(rows).join(Stack, Stack.filename == rows.c.filename)
              .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id)
              .outerjoin(counted, counted.c.vessel_id == Stack.id)
              .where(true()))  # SQLite needs a WHERE to tell the join's ON from ON CONFLICT
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(Prediction).from_select(
        ["model_run_id", "vessel_id", "probability", "spread", "role", "fold", "review_level", "created_at"], source)
    return statement.on_conflict_do_update(
        index_elements=[Prediction.model_run_id, Prediction.vessel_id],
        set_={name: statement.excluded[name]
              for name in ("probability", "spread", "role", "fold", "review_level", "created_at")})


def predictions_frame(session: Session, *, model_run_id: int) -> pd.DataFrame:
    """A run's predictions with what is known about each stack, for tuning and charts.

    Columns: filename, project_id, split, probability, spread, role, fold, label, crowd_score, tier1,
    crowd_label. ``label`` is the stack's reference label: an admin's second look where one replaced
    the crowd's answer (``db.second_look``), else the crowd's (``crowd_label``).
    """
    query = (select(Stack.filename, Stack.project_id, Stack.split, Prediction.probability, Prediction.spread,
                    Prediction.role, Prediction.fold, reference_label(Stack.id).label("label"),
                    CrowdAnswer.crowd_score, CrowdAnswer.tier1, CrowdAnswer.label.label("crowd_label"))
             .join(Stack, Stack.id == Prediction.vessel_id)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id)
             .where(Prediction.model_run_id == model_run_id).order_by(Stack.filename))
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["label"] = frame["label"].astype("Int64")
    frame["crowd_label"] = frame["crowd_label"].astype("Int64")
    frame["fold"] = frame["fold"].astype("Int64")
    return frame
