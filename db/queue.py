"""The review queue: claim the next stack for a reviewer, submit a review (which releases the claim).

A stack **needs review** when

* it has a prediction from the queue's model run: the active policy's run, or (no active
  policy) the newest run;
* the policy's band rule (``core.policy.band.BandRule.needs_review``, rendered by ``db.band``) routes it
  to humans: the probability lies strictly between ``t_low`` and ``t_high`` (a NULL threshold
  decides nothing on its side; with no active policy every predicted stack qualifies), it has no
  crowd label (its answer is already known) and fewer than k reviews (k = the policy's
  ``reviews_required``, 1 without a policy; "unsure" answers do not count, so such a stack goes
  to another reviewer);
* none of its reviews is by this reviewer;
* nobody holds an unexpired claim on it.

Known-answer stacks (see ``db.known_answers``) are mixed in at the admin's rate while the user
has regular work: one of them is served instead of the next regular stack with that probability.

Order: stacks that already have some reviews come first (finish what was started: fewer
stacks wait half-reviewed), then the most valuable in the admin's order (``db.queue_order``):
closest to the decision boundary (default), most likely stalled, most ensemble disagreement,
at random, or a mix of boundary and random. At most one reviewer holds a stack at a time (the ``claim`` table's
primary key is the vessel), so with k > 1 reviewers see a stack one after another. Claims
expire after ``ttl``.

Speed: the candidate query walks the partial index (run, review_level, probability) from the
boundary outwards (see ``Prediction.review_level``), so it does not slow down as reviews pile up;
the uncertainty order walks (run, review_level, spread) from the top, the random order the
prediction primary key from a random vessel id.

Concurrency: on PostgreSQL the candidate vessel row is taken with ``SELECT … FOR UPDATE SKIP
LOCKED``, so concurrent reviewers pass over each other's candidates instead of waiting; the claim
itself is an upsert that only replaces an expired claim, and the conditions are re-checked on a
fresh snapshot after locking. On SQLite the whole claim runs in one short ``BEGIN IMMEDIATE``
transaction: use :func:`db.engine.run_transaction` (``write=True``), which also retries on
"database is locked". ``submit_review`` locks the vessel row the same way.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import (CompoundSelect, Connection, Insert, Integer, Row, Select, bindparam, delete, exists, func,
                        literal, select, union_all, update)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from core.policy.band import BandRule
from db import gate_queue, known_answers, queue_order, second_look
from db.audit import record_event
from db.band import CROWD_KNOWN, GATED_QUEUE_BAND, QUEUE_BAND, band_parameters
from db.errors import ClaimConflictError, DatabaseInputError, UnknownUserError, UnknownVesselError
from db.models import (ANSWERS, Claim, ModelRun, Prediction, Review, PolicyRecord, User, UTCDateTime, Stack,
                       utcnow)
from db.project_status import GateSides, gate_sides
from db.queue_levels import refresh_review_levels

ORDERS = queue_order.ORDERS
DEFAULT_TTL = timedelta(minutes=10)
MAX_CANDIDATES = 50
_RANDOM = random.SystemRandom()


@dataclass(frozen=True)
class QueueRule:
    """Which stacks the queue serves: a model run and the policy's band rule (thresholds and k).

    ``from_policy`` is False when no policy is active (the newest run; the band then decides
    nothing, so every stack goes to humans). ``gates`` holds the projects each side may decide
    when the policy was saved with the project gate (``db.project_status``), else None.
    """

    model_run_id: int
    band: BandRule
    boundary: float
    from_policy: bool = True
    policy_id: int | None = None
    gates: GateSides | None = None


@dataclass(frozen=True)
class ClaimedStack:
    """A stack reserved for one reviewer."""

    vessel_id: int
    filename: str
    probability: float
    spread: float | None
    expires_at: datetime


_POLICY_COLUMNS = (PolicyRecord.model_run_id, PolicyRecord.t_low, PolicyRecord.t_high, PolicyRecord.reviews_required,
                   ModelRun.threshold, PolicyRecord.id, PolicyRecord.project_gate)
_RULE_FROM_POLICY = (select(*_POLICY_COLUMNS).join(ModelRun, ModelRun.id == PolicyRecord.model_run_id)
                     .where(PolicyRecord.active.is_(True)))
_USER_AND_POLICY = (select(User.name, User.role, *_POLICY_COLUMNS).select_from(User)
                    .outerjoin(PolicyRecord, PolicyRecord.active.is_(True))
                    .outerjoin(ModelRun, ModelRun.id == PolicyRecord.model_run_id)
                    .where(User.id == bindparam("user_id"), User.active.is_(True)))
_NEWEST_RUN = select(ModelRun.id, ModelRun.threshold).order_by(ModelRun.id.desc()).limit(1)
_LAST_VESSEL = select(func.max(Stack.id))
_ACTIVE_USER = select(User.name).where(User.id == bindparam("user_id"), User.active.is_(True))


def queue_rule(session: Session) -> QueueRule | None:
    """What the queue serves now (from the active policy, else the newest run); None without any run.

    The boundary used for "closest to the decision boundary" ordering is the run's decision
    threshold (chosen on out-of-fold predictions), clamped into the policy's band; 0.5 (or the
    band's middle) when the run has none.
    """
    connection = session.connection()
    policy = connection.execute(_RULE_FROM_POLICY).first()
    return _rule(connection, None if policy is None else tuple(policy))


def _rule(connection: Connection, policy: tuple | None) -> QueueRule | None:
    """The rule from an active policy's (run, t_low, t_high, k, run threshold, id, project gate), else from
    the newest run."""
    if policy is not None and policy[0] is not None:
        run_id, t_low, t_high, k, threshold, policy_id, project_gate = policy
        band = BandRule.of(t_low, t_high, k)
        threshold = threshold if threshold is not None else (max(band.low, 0.0) + min(band.high, 1.0)) / 2
        gates = gate_sides(connection, policy_id=policy_id) if project_gate else None
        return QueueRule(run_id, band, boundary=min(max(threshold, band.low), band.high), policy_id=policy_id,
                         gates=gates)
    run = connection.execute(_NEWEST_RUN).first()
    if run is None:
        return None
    return QueueRule(run.id, BandRule(), boundary=run.threshold if run.threshold is not None else 0.5,
                     from_policy=False)


def _active_user_name(session: Session, user_id: int) -> str:
    name = session.connection().execute(_ACTIVE_USER, {"user_id": user_id}).scalar()
    if name is None:
        raise UnknownUserError(f"no active user with id {user_id}")
    return name


def _probability(*, probability_index: bool = True):  # noqa: ANN202 - a SQL expression
    """The prediction's probability; ``probability_index=False`` writes it so that no index serves
    the band (``probability + 0``): then an order by another column walks that column's index
    instead of sorting the whole band."""
    return Prediction.probability if probability_index else Prediction.probability + 0.0


_OF_RUN = Prediction.model_run_id == bindparam("run_id")


def _band(gated: bool) -> BandRule:
    """The SQL rule: with the project gate (parameters open_low, open_high) or without."""
    return GATED_QUEUE_BAND if gated else QUEUE_BAND


def _routed(gated: bool) -> list:
    """WHERE conditions (on Prediction) for stacks the rule gives to humans; parameters as :func:`_parameters`."""
    return [_OF_RUN, _band(gated).to_humans(Prediction.probability, crowd_known=CROWD_KNOWN)]


def _claimable(*, probability_index: bool = True, gated: bool = False) -> list:
    """WHERE conditions for stacks a user may claim at one review level; parameters as :func:`_parameters`."""
    return [_OF_RUN, _band(gated).needs_review(_probability(probability_index=probability_index),
                                               crowd_known=CROWD_KNOWN, counted=Prediction.review_level),
            Prediction.review_level == bindparam("level"),
            ~exists().where(Review.vessel_id == Prediction.vessel_id, Review.user_id == bindparam("user_id")),
            ~exists().where(Claim.vessel_id == Prediction.vessel_id, Claim.expires_at > bindparam("now"))]


def _parameters(rule: QueueRule, *, user_id: int, now: datetime) -> dict:
    gates = rule.gates.parameters() if rule.gates is not None else {}
    return {"run_id": rule.model_run_id, **band_parameters(rule.band), **gates, "user_id": user_id, "now": now,
            "boundary": rule.boundary, "level": 0, "gated": rule.gates is not None}


@functools.cache
def _candidate_statement(side: str, *, split_at_boundary: bool, excluding: bool, gated: bool) -> Select:
    """The next claimable stack on one side, locked (PostgreSQL: skipping rows others have locked)."""
    conditions = _claimable(gated=gated)
    if split_at_boundary:
        boundary = bindparam("boundary")
        conditions.append(Prediction.probability >= boundary if side == "up" else Prediction.probability < boundary)
    if excluding:
        conditions.append(Prediction.vessel_id.not_in(bindparam("passed_over", expanding=True)))
    order = ((Prediction.probability.asc(), Prediction.vessel_id.asc()) if side == "up"
             else (Prediction.probability.desc(), Prediction.vessel_id.desc()))
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id).where(*conditions).order_by(*order).limit(1)
            .with_for_update(of=Stack, skip_locked=True))


@functools.cache
def _boundary_statement(*, excluding: bool, gated: bool) -> CompoundSelect:
    """Both sides' next claimable stack in one round trip (each side walks the index from the boundary)."""
    sides = [_candidate_statement(side, split_at_boundary=True, excluding=excluding, gated=gated).subquery(side)
             for side in ("up", "down")]
    return union_all(*(select(side) for side in sides))


@functools.cache
def _spread_statement(*, excluding: bool, gated: bool) -> Select:
    """The claimable stack whose ensemble members disagree most, locked (walks ``ix_prediction_queue_spread``)."""
    conditions = _claimable(probability_index=False, gated=gated)
    if excluding:
        conditions.append(Prediction.vessel_id.not_in(bindparam("passed_over", expanding=True)))
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id).where(*conditions, Prediction.spread.is_not(None))
            .order_by(Prediction.spread.desc(), Prediction.vessel_id.desc()).limit(1)
            .with_for_update(of=Stack, skip_locked=True))


@functools.cache
def _random_statement(*, excluding: bool, gated: bool) -> Select:
    """The first claimable stack at or after a random vessel id (``start``), locked."""
    conditions = [*_claimable(probability_index=False, gated=gated), Prediction.vessel_id >= bindparam("start")]
    if excluding:
        conditions.append(Prediction.vessel_id.not_in(bindparam("passed_over", expanding=True)))
    return (select(Prediction.vessel_id, Prediction.probability, Stack.filename, Prediction.spread)
            .join(Stack, Stack.id == Prediction.vessel_id).where(*conditions)
            .order_by(Prediction.vessel_id).limit(1).with_for_update(of=Stack, skip_locked=True))


def _best_candidate(connection: Connection, order: str, parameters: dict) -> Row | None:
    """The candidate (vessel_id, probability, filename, spread) to claim, locked; None if there is none."""
    statement = {"excluding": bool(parameters.get("passed_over")), "gated": parameters["gated"]}
    if order == "uncertainty":
        found = connection.execute(_spread_statement(**statement), parameters).first()
        return found or _best_candidate(connection, "boundary", parameters)  # stacks without a spread
    if order == "random":
        found = connection.execute(_random_statement(**statement), parameters).first()
        return found or connection.execute(_random_statement(**statement), {**parameters, "start": 0}).first()
    if order == "stalled":
        return connection.execute(_candidate_statement("down", split_at_boundary=False, **statement),
                                  parameters).first()
    options = connection.execute(_boundary_statement(**statement), parameters).all()
    return min(options, key=lambda found: abs(found.probability - parameters["boundary"]), default=None)


PURPOSES = ("regular", "known_answer", "gate", "second_look")
"""Why a stack is claimed: regular work, a known-answer stack (``db.known_answers``), a stack drawn
to validate its project (``db.gate_queue``), or a likely crowd error for an admin's second look
(``db.second_look``)."""


@functools.cache
def _claim_statement(dialect: str, *, purpose: str = "regular", gated: bool = False) -> Insert:
    """Claim a stack if it is still claimable for its purpose (:data:`PURPOSES`), re-checked on a fresh
    snapshot (a review may have committed since the candidate query began); an expired claim is taken
    over. Returns a row only on success."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    conditions = {"regular": lambda: _claimable(gated=gated), "known_answer": known_answers.claimable,
                  "gate": gate_queue.claimable, "second_look": second_look.claimable}[purpose]()
    still_claimable = (select(Prediction.vessel_id, bindparam("user_id", type_=Integer()),
                              bindparam("now", type_=UTCDateTime()), bindparam("expires_at", type_=UTCDateTime()),
                              literal(purpose == "gate"), literal(purpose == "second_look"))
                       .where(Prediction.vessel_id == bindparam("vessel_id"), *conditions))
    statement = dialect_insert(Claim).from_select(
        ["vessel_id", "user_id", "claimed_at", "expires_at", "gate", "second_look"], still_claimable)
    return statement.on_conflict_do_update(
        index_elements=[Claim.vessel_id],
        set_={"user_id": statement.excluded.user_id, "claimed_at": statement.excluded.claimed_at,
              "expires_at": statement.excluded.expires_at, "gate": statement.excluded.gate,
              "second_look": statement.excluded.second_look},
        where=Claim.expires_at <= bindparam("now")).returning(Claim.vessel_id)


@functools.cache
def _work_at_level(gated: bool) -> Select:
    """A routed stack at one review level this user has not reviewed (one row or none)."""
    return select(literal(1)).where(
        *_routed(gated), Prediction.review_level == bindparam("level"),
        ~exists().where(Review.vessel_id == Prediction.vessel_id, Review.user_id == bindparam("user_id"))).limit(1)


def _has_work(connection: Connection, parameters: dict) -> bool:
    """Whether a routed stack still needs a review this user may give (one index range per level)."""
    statement = _work_at_level(parameters["gated"])
    return any(connection.execute(statement, {**parameters, "level": level}).first() is not None
               for level in range(parameters["k"]))


def _claim_known_answer(connection: Connection, parameters: dict, rng: random.Random) -> ClaimedStack | None:
    """Claim a known-answer stack for the user when one is available and they still have regular work."""
    if not _has_work(connection, parameters):
        return None
    found = known_answers.pick_candidate(connection, parameters, rng)
    if found is None:
        return None
    claim = _claim_statement(connection.dialect.name, purpose="known_answer")
    if connection.execute(claim, {**parameters, "vessel_id": found.vessel_id}).first() is None:
        return None  # taken or answered meanwhile: serve regular work this time
    return ClaimedStack(found.vessel_id, found.filename, found.probability, found.spread, parameters["expires_at"])


def _claim_second_look(connection: Connection, parameters: dict) -> ClaimedStack | None:
    """Claim the oldest stack waiting for an admin's second look (``db.second_look``); None when none
    is waiting or free, or another admin took it meanwhile (then regular work is served this time)."""
    found = connection.execute(second_look.candidate_statement(), parameters).first()
    if found is None:
        return None
    claim = _claim_statement(connection.dialect.name, purpose="second_look")
    if connection.execute(claim, {**parameters, "vessel_id": found.vessel_id}).first() is None:
        return None
    return ClaimedStack(found.vessel_id, found.filename, found.probability, found.spread, parameters["expires_at"])


def _claim_for_gate(connection: Connection, rule: QueueRule, parameters: dict,
                    rng: random.Random) -> ClaimedStack | None:
    """Claim a stack drawn at random from a project whose validation gate still wants answers
    (``db.gate_queue``); None when no project wants any or none of their stacks is free."""
    projects = gate_queue.wanting_projects(connection, policy_id=rule.policy_id, now=parameters["now"])
    if not projects:
        return None
    values = {**parameters, "gate_projects": projects, "passed_over": [],
              "start": rng.randint(0, connection.execute(_LAST_VESSEL).scalar() or 0)}
    claim = _claim_statement(connection.dialect.name, purpose="gate")
    for _ in range(MAX_CANDIDATES):
        statement = gate_queue.candidate_statement(excluding=bool(values["passed_over"]))
        found = (connection.execute(statement, values).first()
                 or connection.execute(statement, {**values, "start": 0}).first())
        if found is None:
            return None
        if connection.execute(claim, {**values, "vessel_id": found.vessel_id}).first() is not None:
            return ClaimedStack(found.vessel_id, found.filename, found.probability, found.spread,
                                parameters["expires_at"])
        values["passed_over"] = [*values["passed_over"], found.vessel_id]
    return None


def claim_next(session: Session, *, user_id: int, order: str | None = None, ttl: timedelta = DEFAULT_TTL,
               now: datetime | None = None, rng: random.Random | None = None) -> ClaimedStack | None:
    """Reserve the most valuable stack that this user may review; None when the queue is empty for them.

    With the probability set by the admin (``db.known_answers.known_answer_rate``) the stack is a
    known-answer stack instead, as long as the user has regular work left.

    Parameters
    ----------
    user_id
        The reviewer (must be an active user).
    order
        One of :data:`db.queue_order.ORDERS` (``boundary``, ``stalled``, ``uncertainty``, ``random``,
        ``mix``); default: the admin's setting (:func:`db.queue_order.queue_order`).
    ttl
        How long the claim lasts without a review.
    now
        The current time (tests pass one; default: the clock).
    rng
        Draws whether (and which) known-answer stack to serve (tests pass a seeded one).

    Raises
    ------
    UnknownUserError
        No active user ``user_id``.
    """
    if order is not None and order not in ORDERS:
        raise DatabaseInputError(f"order must be one of {ORDERS}, not {order!r}")
    connection = session.connection()
    row = connection.execute(_USER_AND_POLICY, {"user_id": user_id}).first()
    if row is None:
        raise UnknownUserError(f"no active user with id {user_id}")
    rule = _rule(connection, tuple(row)[2:])
    if rule is None:
        return None
    now = now or utcnow()
    parameters = {**_parameters(rule, user_id=user_id, now=now), "expires_at": now + ttl, "passed_over": []}
    rng = rng or _RANDOM
    if row.role == "admin":
        served = _claim_second_look(connection, parameters)
        if served is not None:
            return served
    if rng.random() < known_answers.known_answer_rate(session):
        served = _claim_known_answer(connection, parameters, rng)
        if served is not None:
            return served
    if rule.gates is not None:
        served = _claim_for_gate(connection, rule, parameters, rng)
        if served is not None:
            return served
    order = order or queue_order.queue_order(session)
    if order == "mix":
        order = "random" if rng.random() < queue_order.MIX_RANDOM_SHARE else "boundary"
    if order == "random":
        parameters["start"] = rng.randint(0, connection.execute(_LAST_VESSEL).scalar() or 0)
    claim = _claim_statement(connection.dialect.name, gated=rule.gates is not None)
    for level in range(rule.band.reviews_required - 1, -1, -1):  # finish started stacks first
        parameters["level"] = level
        for _ in range(MAX_CANDIDATES):
            found = _best_candidate(connection, order, parameters)
            if found is None:
                break
            if connection.execute(claim, {**parameters, "vessel_id": found.vessel_id}).first() is not None:
                return ClaimedStack(found.vessel_id, found.filename, found.probability, found.spread, now + ttl)
            parameters["passed_over"] = [*parameters["passed_over"], found.vessel_id]
    return None


def held_claims(session: Session, *, user_id: int, now: datetime | None = None) -> list[ClaimedStack]:
    """The user's unexpired claims on stacks the queue still serves, oldest first (to resume after a reload)."""
    rule = queue_rule(session)
    if rule is None:
        return []
    query = (select(Claim.vessel_id, Stack.filename, Prediction.probability, Prediction.spread, Claim.expires_at)
             .join(Stack, Stack.id == Claim.vessel_id)
             .join(Prediction, Prediction.vessel_id == Claim.vessel_id)
             .where(Prediction.model_run_id == rule.model_run_id, Claim.user_id == user_id,
                    Claim.expires_at > (now or utcnow()))
             .order_by(Claim.claimed_at, Claim.vessel_id))
    return [ClaimedStack(*row) for row in session.execute(query)]


def claim_window(session: Session, *, user_id: int, size: int, order: str | None = None) -> list[ClaimedStack]:
    """The stacks a reviewer's screen holds: their unexpired claims (oldest first, so a reload
    resumes them), topped up with new claims (:func:`claim_next`) until ``size`` are held or the
    queue is empty for them. The review viewer holds two: the one shown and the next, already loaded.
    """
    claims = held_claims(session, user_id=user_id)[:size]
    while len(claims) < size:
        claimed = claim_next(session, user_id=user_id, order=order)
        if claimed is None:
            break
        claims.append(claimed)
    return claims


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
    parameters = _parameters(rule, user_id=-1, now=now or utcnow())
    count = select(func.count()).select_from(Prediction)
    routed = _routed(rule.gates is not None)
    connection = session.connection()
    return QueueStats(
        predicted=connection.execute(count.where(Prediction.model_run_id == bindparam("run_id")),
                                     parameters).scalar_one(),
        routed_to_humans=connection.execute(count.where(*routed), parameters).scalar_one(),
        done=connection.execute(count.where(*routed, Prediction.review_level >= bindparam("k")),
                                parameters).scalar_one(),
        claimed=connection.execute(count.where(*routed, exists().where(Claim.vessel_id == Prediction.vessel_id,
                                                                       Claim.expires_at > bindparam("now"))),
                                   parameters).scalar_one())


_holder = aliased(User)
_ACTIVE_K = func.coalesce(select(PolicyRecord.reviews_required).where(PolicyRecord.active.is_(True))
                          .scalar_subquery(), 1)
_LOCK_VESSEL = (select(Stack.filename, Claim.user_id, Claim.expires_at, Claim.gate, Claim.second_look,
                       _holder.name.label("holder"),
                       _ACTIVE_USER.scalar_subquery().label("user_name"),
                       known_answers.trusted_label(Stack.id).label("known_answer"),
                       _ACTIVE_K.label("reviews_required"))
                .outerjoin(Claim, Claim.vessel_id == Stack.id).outerjoin(_holder, _holder.id == Claim.user_id)
                .where(Stack.id == bindparam("vessel_id")).with_for_update(of=Stack))
_OWN_CLAIM = delete(Claim).where(Claim.vessel_id == bindparam("vessel_id"), Claim.user_id == bindparam("user_id"))
_REVIEW_OF = select(Review.id, Review.answer, Review.second_look).where(Review.vessel_id == bindparam("vessel_id"),
                                                    Review.user_id == bindparam("user_id"))
_EDIT_REVIEW = (update(Review).where(Review.id == bindparam("review_id"))
                .values(answer=bindparam("answer"), seconds=bindparam("seconds"), updated_at=bindparam("now"),
                        reviews_required=bindparam("reviews_required")))


@functools.cache
def _add_review_statement(dialect: str) -> Insert:
    """Insert a review unless this user already reviewed the stack; returns the new id, or no row."""
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return dialect_insert(Review).on_conflict_do_nothing(index_elements=[Review.vessel_id, Review.user_id]) \
        .returning(Review.id)


def submit_review(session: Session, *, user_id: int, vessel_id: int, answer: str, seconds: float | None = None,
                  now: datetime | None = None) -> int:
    """Store a reviewer's answer and release their claim; a second answer by the same user edits the first.

    Returns the review's id. Edits are audited (``review.edit``). An answer to a stack with a
    trustworthy known answer is stored as a known-answer review (it measures the reviewer). The
    review records the k in force (the active policy's ``reviews_required``, 1 without one) when
    it is given and when it is edited: the export labels the stack by that k (``db.export``).

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
    now = now or utcnow()
    connection = session.connection()
    keys = {"vessel_id": vessel_id, "user_id": user_id}
    stack = connection.execute(_LOCK_VESSEL, keys).first()  # locks the vessel: serialises with claim_next
    user_name = stack.user_name if stack is not None else _active_user_name(session, user_id)
    if user_name is None:
        raise UnknownUserError(f"no active user with id {user_id}")
    if stack is None:
        raise UnknownVesselError(f"no stack with id {vessel_id}")
    if stack.user_id is not None and stack.user_id != user_id and stack.expires_at > now:
        raise ClaimConflictError(f"{stack.filename} is claimed by {stack.holder} until "
                                 f"{stack.expires_at:%Y-%m-%d %H:%M:%S} UTC; review not stored")
    if stack.user_id == user_id:
        connection.execute(_OWN_CLAIM, keys)
    second = bool(stack.second_look) and stack.user_id == user_id
    k = 1 if second else stack.reviews_required
    added = connection.execute(_add_review_statement(connection.dialect.name),
                               {**keys, "answer": answer, "seconds": seconds, "created_at": now,
                                "known_answer": bool(stack.known_answer) and not second,
                                "gate": bool(stack.gate) and stack.user_id == user_id, "second_look": second,
                                "reviews_required": k}).scalar()
    if added is not None:
        refresh_review_levels(session, vessel_ids=[vessel_id])
        return added
    existing = connection.execute(_REVIEW_OF, keys).one()
    if existing.answer != answer:
        connection.execute(_EDIT_REVIEW, {"review_id": existing.id, "answer": answer, "seconds": seconds, "now": now,
                                          "reviews_required": 1 if existing.second_look else stack.reviews_required})
        refresh_review_levels(session, vessel_ids=[vessel_id])
        record_event(session, actor=user_name, action="review.edit", entity="review", entity_id=existing.id,
                     details={"filename": stack.filename, "from": existing.answer, "to": answer})
    return existing.id


def reviews_frame(session: Session) -> pd.DataFrame:
    """Every review with its stack and reviewer: filename, user, answer, seconds, created_at, updated_at."""
    result = session.execute(
        select(Stack.filename, User.name.label("user"), Review.answer, Review.seconds, Review.created_at,
               Review.updated_at)
        .join(Stack, Stack.id == Review.vessel_id).join(User, User.id == Review.user_id)
        .order_by(Review.created_at, Review.id))
    return pd.DataFrame(result.all(), columns=list(result.keys()))
