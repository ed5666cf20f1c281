"""The schema: typed SQLAlchemy 2.0 models for stacks, answers, predictions, reviews and audit.

Tables are created by the Alembic migrations in ``migrations/``, never with ``create_all``; a
test checks that autogenerate finds no difference between these models and the migrations.
Choices are stored as short strings guarded by CHECK constraints (no database enum types, so
migrations stay portable between SQLite and PostgreSQL). Times are stored in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, CheckConstraint, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, SmallInteger, String, Text, UniqueConstraint, false, text)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from core.labels.competition import SPLITS
from core.labels.records import PREDICTION_ROLES
from core.policy.gate import STATUSES as PROJECT_STATUSES
from core.policy.promise import PROMISES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INGEST_STATUSES = ("pending", "ok", "failed")
ANSWERS = ("stalled", "flowing", "unsure", "bad_stack")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC on every back end and always read back timezone-aware.

    SQLite has no time zones: values are stored there as naive UTC, so that string comparison
    (claim expiry) orders them correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base whose metadata names every constraint predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Stack(Base):
    """One stack (a vessel segment): where it came from and how its ingest went.

    ``split`` is ``train`` when the stack came from a metadata file carrying crowd scores
    (``train_metadata.csv``), else ``test``. The ROI box is in pixels of the full frame. The table
    and its foreign keys keep their first names (``vessel``, ``vessel_id``).
    """

    __tablename__ = "vessel"
    __table_args__ = (
        CheckConstraint(_one_of("split", SPLITS), name="split"),
        CheckConstraint(_one_of("status", INGEST_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    project_id: Mapped[str | None] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(8))
    num_frames: Mapped[int | None] = mapped_column(Integer)
    metadata_file: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    depth: Mapped[int | None] = mapped_column(Integer)
    roi_x: Mapped[int | None] = mapped_column(Integer)
    roi_y: Mapped[int | None] = mapped_column(Integer)
    roi_width: Mapped[int | None] = mapped_column(Integer)
    roi_height: Mapped[int | None] = mapped_column(Integer)
    frame_width: Mapped[int | None] = mapped_column(Integer)
    frame_height: Mapped[int | None] = mapped_column(Integer)
    ingested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    crowd_answer: Mapped[CrowdAnswer | None] = relationship(back_populates="vessel")


class CrowdAnswer(Base):
    """What the citizen-science crowd said about a stack (from the competition CSVs)."""

    __tablename__ = "crowd_answer"
    __table_args__ = (
        CheckConstraint("crowd_score >= 0 AND crowd_score <= 1", name="crowd_score_range"),
        CheckConstraint("label IN (0, 1)", name="label"),
    )

    vessel_id: Mapped[int] = mapped_column(ForeignKey("vessel.id", ondelete="CASCADE"), primary_key=True)
    crowd_score: Mapped[float | None] = mapped_column(Float)
    tier1: Mapped[bool | None] = mapped_column(Boolean)
    micro: Mapped[bool | None] = mapped_column(Boolean)
    nano: Mapped[bool | None] = mapped_column(Boolean)
    label: Mapped[int | None] = mapped_column(SmallInteger)
    metadata_file: Mapped[str | None] = mapped_column(String(255))
    labels_file: Mapped[str | None] = mapped_column(String(255))

    vessel: Mapped[Stack] = relationship(back_populates="crowd_answer")


class ModelRun(Base):
    """A trained ensemble (one run directory) whose predictions are stored."""

    __tablename__ = "model_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    arch: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    threshold: Mapped[float | None] = mapped_column(Float)
    checkpoint_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """The ensemble's probability for one stack under one model run.

    ``role`` says how the run scored the stack (one of :data:`PREDICTION_ROLES`); only scores the
    run never trained on may be used to tune thresholds. ``fold`` is the fold whose members scored
    the stack (for an out-of-fold score, the fold that held it out); NULL when not known.

    ``review_level`` is queue bookkeeping kept in step by ``db.queue_levels``: the stack's number
    of reviews that count towards k, or NULL when the crowd's label is known (it never needs a
    human). With it the claim query walks one index range, (run, level, probability), instead of
    stepping over every reviewed or labelled stack near the decision boundary.
    """

    __tablename__ = "prediction"
    __table_args__ = (
        CheckConstraint("probability >= 0 AND probability <= 1", name="probability_range"),
        CheckConstraint(_one_of("role", PREDICTION_ROLES), name="role"),
        Index("ix_prediction_queue", "model_run_id", "review_level", "probability", "vessel_id",
              sqlite_where=text("review_level IS NOT NULL"), postgresql_where=text("review_level IS NOT NULL")),
        Index("ix_prediction_queue_spread", "model_run_id", "review_level", "spread", "vessel_id",
              sqlite_where=text("review_level IS NOT NULL"), postgresql_where=text("review_level IS NOT NULL")),
    )

    model_run_id: Mapped[int] = mapped_column(ForeignKey("model_run.id", ondelete="CASCADE"), primary_key=True)
    vessel_id: Mapped[int] = mapped_column(ForeignKey("vessel.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
    probability: Mapped[float] = mapped_column(Float)
    spread: Mapped[float | None] = mapped_column(Float)
    role: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    fold: Mapped[int | None] = mapped_column(Integer)
    review_level: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyRecord(Base):
    """Two thresholds on a model run's probabilities, and how many human reviews a stack needs.

    p <= t_low: automatically flowing; p >= t_high: automatically stalled; otherwise a human
    decides (the majority of ``reviews_required`` reviews). A NULL threshold decides nothing on
    its side. At most one policy is active.
    """

    __tablename__ = "triage_policy"
    __table_args__ = (
        CheckConstraint("(t_low IS NULL OR t_low >= 0) AND (t_high IS NULL OR t_high <= 1) "
                        "AND (t_low IS NULL OR t_high IS NULL OR t_low <= t_high)", name="thresholds"),
        CheckConstraint("reviews_required >= 1", name="reviews_required"),
        CheckConstraint(_one_of("promise", PROMISES), name="promise"),
        Index("uq_triage_policy_active", "active", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_run_id: Mapped[int] = mapped_column(ForeignKey("model_run.id", ondelete="CASCADE"), index=True)
    t_low: Mapped[float | None] = mapped_column(Float)
    t_high: Mapped[float | None] = mapped_column(Float)
    reviews_required: Mapped[int] = mapped_column(Integer, default=1)
    target_sensitivity: Mapped[float | None] = mapped_column(Float)
    target_specificity: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    promise: Mapped[str] = mapped_column(String(16), default="relative", server_default="absolute")
    """Which promise the targets keep (:data:`core.policy.promise.PROMISES`); rows from before promises were named are
    ``absolute`` (tuned against the truth with the human-error prior)."""
    stall_share: Mapped[float | None] = mapped_column(Float)
    """Share of stalls in the reference the policy was tuned on (the promise is read at that share)."""
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    project_gate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether the policy decides a project's stacks only on the sides its :class:`ProjectStatus` opens
    (``core.policy.gate``); a project without a row is then decided on no side. Policies saved before the
    gate (and ones saved without it) decide every project alike."""

    model_run: Mapped[ModelRun] = relationship()


class ProjectStatus(Base):
    """One project's standing under one policy (``core.policy.gate``, ``core.policy.drift``), computed when the
    policy is saved: validated, gated or drifted, which sides decide its stacks, its answers and
    what it still needs.

    ``project_id`` is the stack's project id, ``''`` for stacks without one. ``gate_reviews`` is
    the number of the project's gate-served reviews when the row was computed: the queue serves the
    project's stacks first until ``stacks_needed`` more have been answered that way.
    """

    __tablename__ = "project_status"
    __table_args__ = (CheckConstraint(_one_of("status", PROJECT_STATUSES), name="status"),)

    policy_id: Mapped[int] = mapped_column(ForeignKey("triage_policy.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    low_open: Mapped[bool] = mapped_column(Boolean)
    high_open: Mapped[bool] = mapped_column(Boolean)
    answered: Mapped[int] = mapped_column(Integer)
    stalled: Mapped[int] = mapped_column(Integer)
    stacks_needed: Mapped[int] = mapped_column(Integer)
    gate_reviews: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The gate's per-side counts and bounds and the drift tests, for reports."""


USER_ROLES = ("reviewer", "admin")
"""What a person who logs in may do (a :class:`User`'s ``role``)."""


class User(Base):
    """A person who logs in: a reviewer labels stacks; an admin also tunes, exports and manages users."""

    __tablename__ = "app_user"
    __table_args__ = (CheckConstraint(_one_of("role", USER_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Part of every signed session token; raising it ends the user's sessions everywhere."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One person's answer about one stack; editing an answer updates this row (and is audited).

    ``known_answer`` marks an answer to a stack served because its answer was known (a
    calibration stack, see ``db.known_answers``): it measures the reviewer, it does not label
    the stack.
    """

    __tablename__ = "review"
    __table_args__ = (
        CheckConstraint(_one_of("answer", ANSWERS), name="answer"),
        UniqueConstraint("vessel_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vessel_id: Mapped[int] = mapped_column(ForeignKey("vessel.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str] = mapped_column(String(16))
    seconds: Mapped[float | None] = mapped_column(Float)
    known_answer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    gate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The stack was served to validate its project (drawn at random from it by the queue): such
    answers are an unbiased sample of the project and count towards its gate."""
    second_look: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An admin's second look at a likely crowd error (``db.second_look``): a decisive answer
    replaces the crowd's as the stack's reference label, and alone decides its final label."""
    reviews_required: Mapped[int | None] = mapped_column(Integer)
    """k of the policy in force when the answer was given (NULL: before k was recorded, read as 1)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Claim(Base):
    """A stack reserved for one reviewer until ``expires_at``: at most one claim per stack."""

    __tablename__ = "claim"

    vessel_id: Mapped[int] = mapped_column(ForeignKey("vessel.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    gate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Served to validate the stack's project; the review made under this claim is marked the same."""
    second_look: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Served to an admin for a second look (``db.second_look``); the review is marked the same."""


class SecondLook(Base):
    """A labelled stack an admin asked to look at again: its crowd answer is a likely error."""

    __tablename__ = "second_look"

    vessel_id: Mapped[int] = mapped_column(ForeignKey("vessel.id", ondelete="CASCADE"), primary_key=True)
    model_run_id: Mapped[int | None] = mapped_column(ForeignKey("model_run.id", ondelete="SET NULL"))
    """The run whose out-of-fold score doubted the crowd."""
    reason: Mapped[str] = mapped_column(Text)
    rank: Mapped[int] = mapped_column(Integer)
    """Place in its request's list (0: the likeliest error): served in that order."""
    requested_by: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who changed what, when: policies, users and review edits."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AppSetting(Base):
    """A setting an admin changes in the app (e.g. the known-answer rate); changes are audited."""

    __tablename__ = "app_setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
