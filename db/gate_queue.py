"""Serving a gated project's stacks first, drawn at random, so its validation gate opens as fast as
reviewers can open it (``core.policy.gate``, ``db.project_status``).

A project that is gated or drifted under the active policy **wants** answers while fewer than its
``stacks_needed`` have been given (or are being given: unexpired gate claims) since its standing
was computed. While any project wants answers, ``db.queue.claim_next`` serves one of their stacks
before the regular order: a stack of a wanting project the run scored, without a crowd label and
without counted reviews, the first at or after a random vessel id. The draw ignores the score, so
the answers are a fair sample of the project's stacks (the gate's binomial bounds assume one);
ordering by score, as the regular queue does, would pick stacks the model is unsure of and flatter
the project. The claim and the review it leads to are marked ``gate``; only such reviews count
towards the gate (``triage_app.projects``).
"""

from __future__ import annotations

import functools

from sqlalchemy import Connection, Select, bindparam, func, select
from sqlalchemy.orm import aliased

from core.policy.gate import NO_PROJECT
from db.band import PREDICTION_PROJECT
from db.known_answers import unseen
from db.models import Claim, Prediction, ProjectStatus, Review, Stack
from db.project_status import PROJECT

_REVIEWED = aliased(Stack)
_GATE_ANSWERS = (select(func.count()).select_from(Review).join(_REVIEWED, _REVIEWED.id == Review.vessel_id)
                 .where(Review.gate.is_(True), Review.known_answer.is_(False),
                        func.coalesce(_REVIEWED.project_id, NO_PROJECT) == ProjectStatus.project_id).scalar_subquery())
_CLAIMED = aliased(Stack)
_GATE_CLAIMS = (select(func.count()).select_from(Claim).join(_CLAIMED, _CLAIMED.id == Claim.vessel_id)
                .where(Claim.gate.is_(True), Claim.expires_at > bindparam("now"),
                       func.coalesce(_CLAIMED.project_id, NO_PROJECT) == ProjectStatus.project_id).scalar_subquery())
_WANTING = (select(ProjectStatus.project_id)
            .where(ProjectStatus.policy_id == bindparam("policy_id"), ProjectStatus.status != "validated",
                   ProjectStatus.stacks_needed > _GATE_ANSWERS - ProjectStatus.gate_reviews + _GATE_CLAIMS)
            .order_by(ProjectStatus.project_id))


def wanting_projects(connection: Connection, *, policy_id: int, now: object) -> list[str]:
    """Projects of the policy whose gate still wants answers (module docstring)."""
    return list(connection.execute(_WANTING, {"policy_id": policy_id, "now": now}).scalars())


def claimable() -> list:
    """WHERE conditions (on Prediction) for a stack of a wanting project this user may claim;
    parameters run_id, gate_projects, user_id, now."""
    return [Prediction.model_run_id == bindparam("run_id"), Prediction.review_level == 0,
            PREDICTION_PROJECT.in_(bindparam("gate_projects", expanding=True)), *unseen()]


@functools.cache
def candidate_statement(*, excluding: bool) -> Select:
    """The first such stack at or after vessel id ``start``, locked (PostgreSQL: skipping locked rows)."""
    conditions = [Prediction.model_run_id == bindparam("run_id"), Prediction.review_level == 0,
                  PROJECT.in_(bindparam("gate_projects", expanding=True)),
                  Prediction.vessel_id >= bindparam("start"), *unseen()]
    if excluding:
        conditions.append(Prediction.vessel_id.not_in(bindparam("passed_over", expanding=True)))
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id).where(*conditions)
            .order_by(Prediction.vessel_id).limit(1).with_for_update(of=Stack, skip_locked=True))
