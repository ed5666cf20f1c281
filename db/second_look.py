"""Second looks at likely crowd errors: the crowd's answer replaced by an admin's where they differ.

``stalltriage crowd-errors`` (``core.labels.crowd_errors``) ranks the labelled stacks whose out-of-fold
score contradicts a narrow crowd vote. An admin queues them here (:func:`request_second_looks`,
from the command's ``--second-look`` or the Crowd errors page); ``db.queue.claim_next`` then
serves each waiting stack to an admin before any other work, one admin per stack. The answer is
stored as a review marked ``second_look``, with k = 1: an admin's second look alone decides.

What the answer changes, each through the rule that already reads reviews:

* the **reference label** the tuner, the gate and the crowd-error search read
  (``db.predictions.predictions_frame``'s ``label``) is the second look's stalled/flowing answer,
  else the crowd's (:func:`reference_label`); "unsure" and "bad stack" leave the crowd's answer;
* the **final label** (``db.export``): a decisive review of a crowd-labelled stack reaching its
  k decides as "human", and the reason names the second look and the crowd's answer it replaced;
* **training** (``db.training_labels``) takes the export's human label, trusted like tier 1.

A second look confirms as often as it corrects: both are kept, and a stack looked at once is
not listed or served again.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Select, bindparam, case, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.audit import record_event
from db.known_answers import unseen
from db.models import CrowdAnswer, Prediction, Review, SecondLook, Stack, User, utcnow

DECISIVE = {"stalled": 1, "flowing": 0}
"""The answers that replace the crowd's, as labels."""


def _answered(vessel_id) -> object:  # noqa: ANN001 - a SQL column
    """SQL condition: someone has given the stack ``vessel_id`` its second look."""
    return exists().where(Review.vessel_id == vessel_id, Review.second_look.is_(True))


def second_look_label(vessel_id) -> object:  # noqa: ANN001 - a SQL column
    """SQL scalar: the stack's latest decisive second-look answer as a label (1 stalled), else NULL."""
    label = case(*((Review.answer == answer, value) for answer, value in DECISIVE.items()))
    return (select(label).where(Review.vessel_id == vessel_id, Review.second_look.is_(True),
                                Review.answer.in_(DECISIVE))
            .order_by(func.coalesce(Review.updated_at, Review.created_at).desc(), Review.id.desc())
            .limit(1).scalar_subquery())


def reference_label(vessel_id) -> object:  # noqa: ANN001 - a SQL column
    """SQL scalar: the label a stack's promise is judged by: its second look's, else the crowd's."""
    return func.coalesce(second_look_label(vessel_id), CrowdAnswer.label)


def request_second_looks(session: Session, *, stacks: pd.DataFrame, model_run_id: int | None,
                         actor: str | None) -> int:
    """Queue ``stacks`` (columns filename, reason; likeliest error first) for an admin's second look,
    to be served in that order after earlier requests; returns how many were new.

    Stacks already queued or already looked at are left as they are; unknown filenames are
    ignored (the caller lists stacks of the database). Audited as ``second_look.request``.
    """
    known = dict(session.execute(select(Stack.filename, Stack.id)
                                 .where(Stack.filename.in_(stacks["filename"].tolist()))).all())
    now = utcnow()
    rows = [{"vessel_id": known[name], "model_run_id": model_run_id, "reason": reason, "rank": rank,
             "requested_by": actor, "requested_at": now}
            for rank, (name, reason) in enumerate(zip(stacks["filename"], stacks["reason"])) if name in known]
    if not rows:
        return 0
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(SecondLook).on_conflict_do_nothing(index_elements=[SecondLook.vessel_id]) \
        .returning(SecondLook.vessel_id)
    added = len(session.execute(statement, rows).all())
    if added:
        record_event(session, actor=actor, action="second_look.request", entity="model_run",
                     entity_id=model_run_id, details={"stacks": added})
    return added


def looked_at(session: Session) -> set[str]:
    """Filenames of the stacks that have had their second look (not to be flagged again)."""
    query = select(Stack.filename).where(_answered(Stack.id))
    return set(session.execute(query).scalars())


def second_looks_frame(session: Session) -> pd.DataFrame:
    """Every queued second look: filename, reason, requested_by, requested_at, crowd_label,
    crowd_score, answer (None while waiting), answered_by and status (waiting, confirmed,
    corrected, or the answer when it was unsure or a bad stack)."""
    looked = (select(Review.vessel_id, Review.answer, User.name.label("answered_by"))
              .join(User, User.id == Review.user_id).where(Review.second_look.is_(True)).subquery())
    query = (select(Stack.filename, SecondLook.reason, SecondLook.requested_by, SecondLook.requested_at,
                    CrowdAnswer.label.label("crowd_label"), CrowdAnswer.crowd_score, looked.c.answer,
                    looked.c.answered_by)
             .join(Stack, Stack.id == SecondLook.vessel_id)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == SecondLook.vessel_id)
             .outerjoin(looked, looked.c.vessel_id == SecondLook.vessel_id)
             .order_by(SecondLook.requested_at, SecondLook.rank))
    result = session.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame["crowd_label"] = frame["crowd_label"].astype("Int64")
    frame["status"] = [_status(answer, crowd) for answer, crowd in zip(frame["answer"], frame["crowd_label"])]
    return frame


def _status(answer: str | None, crowd: object) -> str:
    """What a second look did to the crowd's answer."""
    if answer is None:
        return "waiting"
    if answer not in DECISIVE:
        return answer
    return "confirmed" if not pd.isna(crowd) and DECISIVE[answer] == int(crowd) else "corrected"


def claimable() -> list:
    """WHERE conditions (on Prediction) for a queued stack still waiting for its second look that
    this admin may claim; parameters run_id, user_id, now (as in ``db.queue``)."""
    return [exists().where(SecondLook.vessel_id == Prediction.vessel_id), *_waiting_unseen()]


def _waiting_unseen() -> list:
    return [Prediction.model_run_id == bindparam("run_id"), ~_answered(Prediction.vessel_id), *unseen()]


def candidate_statement() -> Select:
    """The first request still claimable (oldest, then likeliest), locked (PostgreSQL: skipping locked rows)."""
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id)
            .join(SecondLook, SecondLook.vessel_id == Prediction.vessel_id)
            .where(*_waiting_unseen()).order_by(SecondLook.requested_at, SecondLook.rank)
            .limit(1).with_for_update(of=Stack, skip_locked=True))


def waiting(session: Session) -> int:
    """How many queued stacks still wait for their second look."""
    return session.execute(select(func.count()).select_from(SecondLook)
                           .where(~_answered(SecondLook.vessel_id))).scalar_one()

