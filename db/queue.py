"""The review queue: claim the next stack for a reviewer, submit a review, release a claim.

A stack **needs review** when

* it has a prediction from the queue's model run: the active policy's run, or (no active
  policy) the newest run;
* that probability lies strictly between the policy's ``t_low`` and ``t_high`` (with no active
  policy every predicted stack qualifies);
* it has no crowd label (its answer is already known), fewer than k reviews (k = the policy's
  ``reviews_required``, 1 without a policy; "unsure" answers do not count, so such a stack goes
  to another reviewer), none of them by this reviewer;
* nobody holds an unexpired claim on it.

At most one reviewer holds a stack at a time (the ``claim`` table's primary key is the vessel),
so with k > 1 reviewers see a stack one after another. Claims expire after ``ttl``.

Concurrency: on PostgreSQL the candidate vessel row is taken with ``SELECT … FOR UPDATE SKIP
LOCKED``, so concurrent reviewers pass over each other's candidates instead of waiting; the claim
itself is an upsert that only replaces an expired claim, and the conditions are re-checked on a
fresh snapshot after locking. On SQLite the whole claim runs in one short ``BEGIN IMMEDIATE``
transaction: use :func:`db.engine.run_transaction` (``write=True``), which also retries on
"database is locked". ``submit_review`` locks the vessel row the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.audit import record_event
from db.errors import ClaimConflictError, DatabaseInputError, UnknownVesselError
from db.models import ANSWERS, Claim, CrowdAnswer, ModelRun, Prediction, Review, User, Vessel, utcnow
from db.policy import active_policy
from db.users import get_user

ORDERS = ("boundary", "stalled")
DEFAULT_TTL = timedelta(minutes=10)
MAX_CANDIDATES = 50


@dataclass(frozen=True)
class QueueRule:
    """Which stacks the queue serves: a model run, the open band (t_low, t_high) and k."""

    model_run_id: int
    t_low: float | None
    t_high: float | None
    reviews_required: int
    boundary: float


@dataclass(frozen=True)
class ClaimedStack:
    """A stack reserved for one reviewer."""

    vessel_id: int
    filename: str
    probability: float
    spread: float | None
    expires_at: datetime


def queue_rule(session: Session) -> QueueRule | None:
    """What the queue serves now (from the active policy, else the newest run); None without any run.

    The boundary used for "closest to the decision boundary" ordering is the run's decision
    threshold (chosen on out-of-fold predictions), clamped into the policy's band; 0.5 (or the
    band's middle) when the run has none.
    """
    policy = active_policy(session)
    if policy is not None:
        run = session.get(ModelRun, policy.model_run_id)
        threshold = run.threshold if run.threshold is not None else (policy.t_low + policy.t_high) / 2
        return QueueRule(policy.model_run_id, policy.t_low, policy.t_high, policy.reviews_required,
                         boundary=min(max(threshold, policy.t_low), policy.t_high))
    run = session.scalar(select(ModelRun).order_by(ModelRun.id.desc()).limit(1))
    if run is None:
        return None
    return QueueRule(run.id, None, None, 1, boundary=run.threshold if run.threshold is not None else 0.5)


def _review_count(vessel_id) -> Select:  # noqa: ANN001 - a column expression
    """Reviews that count towards k: every answer but "unsure" (an unsure stack goes to someone else)."""
    return select(func.count()).where(Review.vessel_id == vessel_id, Review.answer != "unsure").scalar_subquery()


def _needs_review(rule: QueueRule, *, user_id: int, now: datetime) -> list:
    """WHERE conditions (on Prediction) for stacks this user may claim."""
    conditions = [
        Prediction.model_run_id == rule.model_run_id,
        ~exists().where(CrowdAnswer.vessel_id == Prediction.vessel_id, CrowdAnswer.label.is_not(None)),
        ~exists().where(Review.vessel_id == Prediction.vessel_id, Review.user_id == user_id),
        _review_count(Prediction.vessel_id) < rule.reviews_required,
        ~exists().where(Claim.vessel_id == Prediction.vessel_id, Claim.expires_at > now),
    ]
    if rule.t_low is not None:
        conditions += [Prediction.probability > rule.t_low, Prediction.probability < rule.t_high]
    return conditions


def _candidate(session: Session, conditions: list, *, side: str) -> tuple[int, float] | None:
    query = select(Prediction.vessel_id, Prediction.probability).join(Vessel, Vessel.id == Prediction.vessel_id)
    query = query.where(*conditions)
    if side == "up":
        query = query.order_by(Prediction.probability.asc(), Prediction.vessel_id.asc())
    else:
        query = query.order_by(Prediction.probability.desc(), Prediction.vessel_id.desc())
    row = session.execute(query.limit(1).with_for_update(of=Vessel, skip_locked=True)).first()
    return None if row is None else (row[0], row[1])


def _best_candidate(session: Session, rule: QueueRule, conditions: list, order: str) -> int | None:
    if order == "stalled":
        found = _candidate(session, conditions, side="down")
        return None if found is None else found[0]
    above = _candidate(session, [*conditions, Prediction.probability >= rule.boundary], side="up")
    below = _candidate(session, [*conditions, Prediction.probability < rule.boundary], side="down")
    options = [found for found in (above, below) if found is not None]
    if not options:
        return None
    return min(options, key=lambda found: abs(found[1] - rule.boundary))[0]


def _take_claim(session: Session, *, vessel_id: int, user_id: int, now: datetime, ttl: timedelta) -> bool:
    """Insert the claim, or replace an expired one; False when someone else holds it."""
    dialect_insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = {"vessel_id": vessel_id, "user_id": user_id, "claimed_at": now, "expires_at": now + ttl}
    statement = dialect_insert(Claim).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[Claim.vessel_id], set_={k: v for k, v in values.items() if k != "vessel_id"},
        where=Claim.expires_at <= now).returning(Claim.vessel_id)
    return session.execute(statement).first() is not None


def claim_next(session: Session, *, user_id: int, order: str = "boundary", ttl: timedelta = DEFAULT_TTL,
               now: datetime | None = None) -> ClaimedStack | None:
    """Reserve the most valuable stack that this user may review; None when the queue is empty for them.

    Parameters
    ----------
    user_id
        The reviewer (must be an active user).
    order
        ``"boundary"``: closest to the decision boundary first (most uncertain);
        ``"stalled"``: most likely stalled first.
    ttl
        How long the claim lasts without a review.
    now
        The current time (tests pass one; default: the clock).

    Raises
    ------
    UnknownUserError
        No active user ``user_id``.
    """
    if order not in ORDERS:
        raise DatabaseInputError(f"order must be one of {ORDERS}, not {order!r}")
    get_user(session, user_id=user_id)
    now = now or utcnow()
    rule = queue_rule(session)
    if rule is None:
        return None
    conditions = _needs_review(rule, user_id=user_id, now=now)
    passed_over: list[int] = []
    for _ in range(MAX_CANDIDATES):
        current = [*conditions, Prediction.vessel_id.not_in(passed_over)] if passed_over else conditions
        vessel_id = _best_candidate(session, rule, current, order)
        if vessel_id is None:
            return None
        if _still_needs_review(session, rule, vessel_id=vessel_id, user_id=user_id, now=now) \
                and _take_claim(session, vessel_id=vessel_id, user_id=user_id, now=now, ttl=ttl):
            return _claimed(session, rule, vessel_id=vessel_id, expires_at=now + ttl)
        passed_over.append(vessel_id)
    return None


def _still_needs_review(session: Session, rule: QueueRule, *, vessel_id: int, user_id: int, now: datetime) -> bool:
    """Re-check a locked candidate on a fresh snapshot (a concurrent review may just have committed)."""
    conditions = _needs_review(rule, user_id=user_id, now=now)
    query = select(Prediction.vessel_id).where(Prediction.vessel_id == vessel_id, *conditions)
    return session.execute(query).first() is not None


def _claimed(session: Session, rule: QueueRule, *, vessel_id: int, expires_at: datetime) -> ClaimedStack:
    filename, probability, spread = session.execute(
        select(Vessel.filename, Prediction.probability, Prediction.spread)
        .join(Prediction, Prediction.vessel_id == Vessel.id)
        .where(Vessel.id == vessel_id, Prediction.model_run_id == rule.model_run_id)).one()
    return ClaimedStack(vessel_id, filename, probability, spread, expires_at)


def held_claims(session: Session, *, user_id: int, now: datetime | None = None) -> list[ClaimedStack]:
    """The user's unexpired claims on stacks the queue still serves, oldest first (to resume after a reload)."""
    rule = queue_rule(session)
    if rule is None:
        return []
    query = (select(Claim.vessel_id, Vessel.filename, Prediction.probability, Prediction.spread, Claim.expires_at)
             .join(Vessel, Vessel.id == Claim.vessel_id)
             .join(Prediction, Prediction.vessel_id == Claim.vessel_id)
             .where(Prediction.model_run_id == rule.model_run_id, Claim.user_id == user_id,
                    Claim.expires_at > (now or utcnow()))
             .order_by(Claim.claimed_at, Claim.vessel_id))
    return [ClaimedStack(*row) for row in session.execute(query)]


@dataclass(frozen=True)
class QueueStats:
    """Where review stands under the current queue rule."""

    predicted: int
    routed_to_humans: int
    done: int
    claimed: int

    @property
    def remaining(self) -> int:
        """Stacks routed to humans that still lack enough reviews."""
        return self.routed_to_humans - self.done


def queue_stats(session: Session, *, now: datetime | None = None) -> QueueStats:
    """Counts for progress displays: predicted stacks, those routed to humans, done (k reviews), claimed now."""
    rule = queue_rule(session)
    if rule is None:
        return QueueStats(0, 0, 0, 0)
    in_run = Prediction.model_run_id == rule.model_run_id
    routed = [in_run, ~exists().where(CrowdAnswer.vessel_id == Prediction.vessel_id, CrowdAnswer.label.is_not(None))]
    if rule.t_low is not None:
        routed += [Prediction.probability > rule.t_low, Prediction.probability < rule.t_high]
    count = select(func.count()).select_from(Prediction)
    return QueueStats(
        predicted=session.scalar(count.where(in_run)),
        routed_to_humans=session.scalar(count.where(*routed)),
        done=session.scalar(count.where(*routed, _review_count(Prediction.vessel_id) >= rule.reviews_required)),
        claimed=session.scalar(count.where(*routed, exists().where(Claim.vessel_id == Prediction.vessel_id,
                                                                    Claim.expires_at > (now or utcnow())))))


def release_claim(session: Session, *, user_id: int, vessel_id: int) -> bool:
    """Give a claimed stack back to the queue; False when this user held no claim on it."""
    result = session.execute(delete(Claim).where(Claim.vessel_id == vessel_id, Claim.user_id == user_id))
    return result.rowcount > 0


def submit_review(session: Session, *, user_id: int, vessel_id: int, answer: str, seconds: float | None = None,
                  now: datetime | None = None) -> Review:
    """Store a reviewer's answer and release their claim; a second answer by the same user edits the first.

    Raises
    ------
    UnknownUserError
        No active user ``user_id``.
    UnknownVesselError
        No stack ``vessel_id``.
    ClaimConflictError
        Someone else holds an unexpired claim on the stack.
    DatabaseInputError
        ``answer`` is not one of stalled, flowing, unsure, bad_stack.
    """
    if answer not in ANSWERS:
        raise DatabaseInputError(f"answer must be one of {', '.join(ANSWERS)}, not {answer!r}")
    user = get_user(session, user_id=user_id)
    now = now or utcnow()
    vessel = session.scalar(select(Vessel).where(Vessel.id == vessel_id).with_for_update())
    if vessel is None:
        raise UnknownVesselError(f"no stack with id {vessel_id}")
    claim = session.scalar(select(Claim).where(Claim.vessel_id == vessel_id).execution_options(populate_existing=True))
    if claim is not None and claim.user_id != user_id and claim.expires_at > now:
        holder = session.get(User, claim.user_id)
        raise ClaimConflictError(f"{vessel.filename} is claimed by {holder.name} until "
                                 f"{claim.expires_at:%Y-%m-%d %H:%M:%S} UTC; review not stored")
    if claim is not None and claim.user_id == user_id:
        session.delete(claim)
    review = session.scalar(select(Review).where(Review.vessel_id == vessel_id, Review.user_id == user_id))
    if review is None:
        review = Review(vessel_id=vessel_id, user_id=user_id, answer=answer, seconds=seconds, created_at=now)
        session.add(review)
    elif review.answer != answer:
        record_event(session, actor=user.name, action="review.edit", entity="review", entity_id=review.id,
                     details={"filename": vessel.filename, "from": review.answer, "to": answer})
        review.answer, review.seconds, review.updated_at = answer, seconds, now
    session.flush()
    return review


def reviews_frame(session: Session) -> pd.DataFrame:
    """Every review with its stack and reviewer: filename, user, answer, seconds, created_at, updated_at."""
    result = session.execute(
        select(Vessel.filename, User.name.label("user"), Review.answer, Review.seconds, Review.created_at,
               Review.updated_at)
        .join(Vessel, Vessel.id == Review.vessel_id).join(User, User.id == Review.user_id)
        .order_by(Review.created_at, Review.id))
    return pd.DataFrame(result.all(), columns=list(result.keys()))
