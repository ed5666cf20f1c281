"""Each project's standing under a policy (validated, gated, drifted): what the gate and drift checks
read, and where their verdicts are kept for the queue, the export and the pages.

The verdicts are computed in ``core.policy.gate`` / ``core.policy.drift`` (by ``triage_app.projects`` when a
policy is saved) and stored here, one row per project and policy. A policy saved with
``project_gate`` decides a project's stacks only on the sides its row opens; a project without a
row (first seen after the policy was saved) is decided on no side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, case, delete, func, insert, select
from sqlalchemy.orm import Session

from core.policy.gate import NO_PROJECT
from db.models import CrowdAnswer, PolicyRecord, Prediction, ProjectStatus, Review, Stack
from db.second_look import reference_label

PROJECT = func.coalesce(Stack.project_id, NO_PROJECT)
"""A stack's project key in SQL (stacks without a project id form the project ``''``)."""
STATUS_COLUMNS = ("project_id", "status", "low_open", "high_open", "answered", "stalled", "stacks_needed",
                  "gate_reviews", "reason", "details")


def _frame(session: Session, query) -> pd.DataFrame:  # noqa: ANN001 - a Select
    result = session.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def stack_features(session: Session, *, model_run_id: int) -> pd.DataFrame:
    """Every stack the run scored, with what the gate and the drift check read.

    Columns: filename, project (``''`` for none), probability, role, label (the reference label:
    an admin's second look, else the crowd's, ``db.second_look``; NA when unknown), gate_answer (the majority of the answers given to it as a gate-served stack: 1
    stalled, 0 flowing, NA for none or a tie), depth (frames; the frame count when the depth is not
    recorded), roi_area (pixels of the outlined box), ingested_at.
    """
    gate = (select(Review.vessel_id,
                   func.sum(case((Review.answer == "stalled", 1), else_=0)).label("stalled"),
                   func.sum(case((Review.answer == "flowing", 1), else_=0)).label("flowing"))
            .where(Review.gate.is_(True), Review.known_answer.is_(False)).group_by(Review.vessel_id).subquery())
    gate_answer = case((gate.c.stalled > gate.c.flowing, 1), (gate.c.flowing > gate.c.stalled, 0), else_=None)
    query = (select(Stack.filename, PROJECT.label("project"), Prediction.probability, Prediction.role,
                    reference_label(Stack.id).label("label"), gate_answer.label("gate_answer"),
                    func.coalesce(Stack.depth, Stack.num_frames).label("depth"),
                    (Stack.roi_width * Stack.roi_height).label("roi_area"), Stack.ingested_at)
             .select_from(Prediction).join(Stack, Stack.id == Prediction.vessel_id)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id)
             .outerjoin(gate, gate.c.vessel_id == Stack.id)
             .where(Prediction.model_run_id == model_run_id).order_by(Stack.filename))
    frame = _frame(session, query)
    return frame.astype({"label": "Int64", "gate_answer": "Int64", "depth": "float64", "roi_area": "float64"})


def gate_review_counts(session: Session) -> dict[str, int]:
    """Gate-served answers (not known-answer ones) per project so far."""
    query = (select(PROJECT.label("project"), func.count()).select_from(Review)
             .join(Stack, Stack.id == Review.vessel_id)
             .where(Review.gate.is_(True), Review.known_answer.is_(False)).group_by(PROJECT))
    return {project: int(count) for project, count in session.execute(query)}


def save_project_status(session: Session, *, policy_id: int, rows: Iterable[dict], every: bool = True) -> None:
    """Store the policy's project rows (``STATUS_COLUMNS`` each) and mark the policy as gated by them:
    replacing every row of the policy, or (``every=False``) only those of the projects given."""
    rows = [{"policy_id": policy_id, **{column: row[column] for column in STATUS_COLUMNS}} for row in rows]
    replaced = delete(ProjectStatus).where(ProjectStatus.policy_id == policy_id)
    if not every:
        replaced = replaced.where(ProjectStatus.project_id.in_([row["project_id"] for row in rows]))
    session.execute(replaced)
    if rows:
        session.execute(insert(ProjectStatus), rows)
    policy = session.get(PolicyRecord, policy_id)
    policy.project_gate = True
    session.flush()


def project_status(session: Session, *, policy_id: int | None = None) -> pd.DataFrame:
    """The project rows of a policy (default: the active one), by project; empty when it has none."""
    policy = (select(PolicyRecord.id).where(PolicyRecord.active.is_(True)).scalar_subquery()
              if policy_id is None else policy_id)
    query = (select(*(getattr(ProjectStatus, column) for column in STATUS_COLUMNS))
             .where(ProjectStatus.policy_id == policy).order_by(ProjectStatus.project_id))
    frame = _frame(session, query)
    return frame if not frame.empty else pd.DataFrame(columns=list(STATUS_COLUMNS))


NOT_VALIDATED = "project not yet validated"
DRIFTED = "project drifted"


@dataclass(frozen=True)
class GateSides:
    """Under a policy saved with the project gate: the projects each side may decide, and why the
    model decides nothing for a stack of any other project (the export's ``reason``)."""

    open_low: frozenset[str]
    open_high: frozenset[str]
    drifted: frozenset[str]

    def parameters(self) -> dict[str, list[str]]:
        """The parameters of ``db.band.GATED_QUEUE_BAND``."""
        return {"open_low": sorted(self.open_low), "open_high": sorted(self.open_high)}

    def opens(self, project: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Per stack (its project, ``''`` for none): whether ``t_low`` and ``t_high`` may decide it."""
        return project.isin(self.open_low), project.isin(self.open_high)

    def reason(self, project: pd.Series) -> pd.Series:
        """Per stack: why a closed side does not decide it (drifted, else not yet validated)."""
        return pd.Series(DRIFTED, index=project.index).where(project.isin(self.drifted), NOT_VALIDATED)


def gate_sides(connection: Connection, *, policy_id: int) -> GateSides:
    """The open sides of each project under a policy (a project without a row is open on neither)."""
    rows = connection.execute(select(ProjectStatus.project_id, ProjectStatus.low_open, ProjectStatus.high_open,
                                     ProjectStatus.status).where(ProjectStatus.policy_id == policy_id)).all()
    return GateSides(open_low=frozenset(row.project_id for row in rows if row.low_open),
                     open_high=frozenset(row.project_id for row in rows if row.high_open),
                     drifted=frozenset(row.project_id for row in rows if row.status == "drifted"))
