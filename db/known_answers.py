"""Known-answer stacks (Stall Catchers' calibration movies): mixing them into the queue, reading what they measure.

Reviewers are not perfect, and a quality promise that counts routed stacks as answered correctly
does not hold. So the queue serves, at a rate the admin sets (default 1 in 10), stacks whose
answer is already known and trustworthy: a crowd label marked tier 1 (the crowd was confident).
The reviewer cannot tell them apart: same page, same claim and review path, and the same kind of
stack, drawn preferably from the active policy's routed score band (humans err more on the hard
stacks the policy routes, so skill measured on easy stacks would flatter them). A reviewer never
gets a stack twice, and a stack is held by one reviewer at a time, as in the rest of the queue.

Answers to such stacks are stored with ``review.known_answer`` set: they measure the reviewer
(:func:`known_answer_reviews` feeds ``core.labels.skill``) and never label the stack.

Drawing: a random start among the vessel ids, then the first eligible stack at or after it
(wrapping around), walking the prediction table's primary key: a few rows per draw while
eligible stacks are common. When a reviewer has answered every known-answer stack in the band,
a draw walks the run's predictions once before falling back to stacks outside the band.
"""

from __future__ import annotations

import functools
import random

import pandas as pd
from sqlalchemy import Connection, Select, and_, bindparam, exists, func, select
from sqlalchemy.orm import Session, aliased

from db.app_settings import get_setting, set_setting
from db.band import QUEUE_BAND
from db.errors import DatabaseInputError
from db.models import Claim, CrowdAnswer, Prediction, Review, User, Stack

RATE_KEY = "known_answer_rate"
DEFAULT_RATE = 0.1
MAX_RATE = 0.5
TRUSTED = and_(CrowdAnswer.label.is_not(None), CrowdAnswer.tier1.is_(True))
"""A crowd answer trustworthy enough to measure reviewers by."""
_INGESTED = aliased(Stack)


def known_answer_rate(session: Session) -> float:
    """The share of served stacks that are known-answer stacks (the admin's setting, default 0.1)."""
    return float(get_setting(session, RATE_KEY, DEFAULT_RATE))


def set_known_answer_rate(session: Session, *, rate: float, actor: str | None) -> None:
    """Change the known-answer rate (audited); 0 turns mixing off.

    Raises
    ------
    DatabaseInputError
        ``rate`` outside [0, 0.5]: more than every second stack would be calibration, not work.
    """
    if not 0.0 <= rate <= MAX_RATE:
        raise DatabaseInputError(f"known-answer rate must lie between 0 and {MAX_RATE}, got {rate}")
    set_setting(session, RATE_KEY, float(rate), actor=actor)


def trusted_label(vessel_id) -> object:  # noqa: ANN001 - a SQL column
    """SQL condition: the stack ``vessel_id`` has a trustworthy known answer."""
    return exists().where(CrowdAnswer.vessel_id == vessel_id, TRUSTED)


def claimable() -> list:
    """WHERE conditions (on Prediction) for a known-answer stack this user may claim (ingested, so
    it can be shown); parameters run_id, user_id, now (as in ``db.queue``)."""
    return [Prediction.model_run_id == bindparam("run_id"), trusted_label(Prediction.vessel_id),
            exists().where(_INGESTED.id == Prediction.vessel_id, _INGESTED.status == "ok"), *unseen()]


def unseen() -> list:
    """Neither reviewed by this user nor held by anyone now (parameters user_id, now)."""
    return [~exists().where(Review.vessel_id == Prediction.vessel_id, Review.user_id == bindparam("user_id")),
            ~exists().where(Claim.vessel_id == Prediction.vessel_id, Claim.expires_at > bindparam("now"))]


@functools.cache
def _candidate_statement(*, in_band: bool, from_start: bool) -> Select:
    """The first claimable known-answer stack by vessel id at or after ``start`` (else: before it,
    wrapping around), locked (skip locked).

    The label and the ingest status are joined rather than tested per row, and the id range is
    repeated on every joined table: PostgreSQL does not carry a range across a join, and would
    otherwise merge-join from the first id instead of from ``start``.
    """
    start = bindparam("start")
    ids = (Prediction.vessel_id, Stack.id, CrowdAnswer.vessel_id)
    conditions = [Prediction.model_run_id == bindparam("run_id"), TRUSTED, Stack.status == "ok",
                  *unseen(), *((column >= start) if from_start else (column < start) for column in ids)]
    if in_band:
        conditions.append(QUEUE_BAND.routed(Prediction.probability))
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id)
            .join(CrowdAnswer, CrowdAnswer.vessel_id == Prediction.vessel_id).where(*conditions)
            .order_by(Prediction.vessel_id).limit(1).with_for_update(of=Stack, skip_locked=True))


_MAX_ID = select(func.max(Prediction.vessel_id)).where(Prediction.model_run_id == bindparam("run_id"))


def pick_candidate(connection: Connection, parameters: dict, rng: random.Random) -> object | None:
    """A random known-answer stack for the user (vessel_id, probability, filename, spread), locked;
    from the routed band when one is there, else from anywhere; None when there is none."""
    top = connection.execute(_MAX_ID, parameters).scalar()
    if top is None:
        return None
    start = rng.randint(1, top)
    for in_band in (True, False):
        for from_start in (True, False):
            statement = _candidate_statement(in_band=in_band, from_start=from_start)
            found = connection.execute(statement, {**parameters, "start": start}).first()
            if found is not None:
                return found
    return None


def known_answer_reviews(session: Session, *, model_run_id: int | None = None) -> pd.DataFrame:
    """Every stalled/flowing answer to a known-answer stack, oldest first: user, filename, answer and truth
    (the known answer), both 1 = stalled, 0 = flowing, and with ``model_run_id`` the run's ``probability``
    of the stack (NaN where it has none). Unsure and bad-stack answers carry no skill information."""
    columns = [User.name.label("user"), Stack.filename, Review.answer, CrowdAnswer.label.label("truth")]
    query = select(*columns)
    if model_run_id is not None:
        query = (select(*columns, Prediction.probability)
                 .outerjoin(Prediction, (Prediction.vessel_id == Review.vessel_id)
                            & (Prediction.model_run_id == model_run_id)))
    query = (query.join(User, User.id == Review.user_id).join(Stack, Stack.id == Review.vessel_id)
             .join(CrowdAnswer, CrowdAnswer.vessel_id == Review.vessel_id)
             .where(Review.known_answer.is_(True), Review.answer.in_(("stalled", "flowing")),
                    CrowdAnswer.label.is_not(None))
             .order_by(Review.id))
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["answer"] = (frame["answer"] == "stalled").astype("int64")
    frame["truth"] = frame["truth"].astype("int64")
    if model_run_id is not None:
        frame["probability"] = frame["probability"].astype("float64")
    return frame
