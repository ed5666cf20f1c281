"""Logic shared by the app's pages (review queue, media, thresholds, dashboard, export, users), testable without Streamlit.

Page scripts call these functions and render what they return; nothing here imports Streamlit.
"""

from __future__ import annotations

import functools
import logging
import tempfile
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.labels.skill import ReviewerSkill
from core.policy.promise import DEFAULT_PROMISE
from core.video.store import VolumeStore, key_for
from db import app_queries, known_answers, predictions, queue, second_look, users
from db import queue_order as order_setting
from db.engine import make_engine, make_session_factory, run_transaction
from db.errors import DatabaseInputError
from db.models import Review, Stack
from triage_app.media import MediaCache, ReviewMedia, StackRef, review_media
from triage_app import crowd_errors as crowd_error_search, projects, retraining, sessions, tuning
from triage_app.settings import Settings

log = logging.getLogger(__name__)

SKILL_COLUMNS = ["user", "n_known_stalled", "n_known_flowing", "sensitivity_mean", "sensitivity_low",
                 "sensitivity_high", "specificity_mean", "specificity_low", "specificity_high"]


@dataclass(frozen=True)
class SessionUser:
    """Who is logged in (plain values: safe to keep in Streamlit's session state)."""

    id: int
    name: str
    role: str
    session_version: int = 0

    @property
    def is_admin(self) -> bool:
        """Admins tune thresholds, export and manage users."""
        return self.role == "admin"

    @classmethod
    def of(cls, user: users.User) -> SessionUser:
        """The plain copy of a database user."""
        return cls(id=user.id, name=user.name, role=user.role, session_version=user.session_version)


@dataclass(frozen=True)
class LoginOutcome:
    """A login attempt: the user, or the seconds to wait when the name is throttled."""

    user: SessionUser | None
    wait_s: float = 0.0


def login_attempt(session: Session, *, name: str, password: str) -> LoginOutcome:
    """Check a name and password (argon2id), throttled and audited by ``db.users.login``.
    The caller commits, so that the audit events stay."""
    result = users.login(session, name=name, password=password)
    return LoginOutcome(user=None if result.user is None else SessionUser.of(result.user), wait_s=result.wait_s)


def session_ticket(user: SessionUser, *, secret: str, started: datetime) -> str:
    """A one-minute ticket the page exchanges for the HttpOnly session cookie (see :mod:`triage_app.server`);
    ``started``: when the session began, which the cookie's token keeps."""
    return sessions.issue_ticket(secret, user_id=user.id, version=user.session_version, started=started.timestamp())


def session_started(*, token: str, secret: str) -> datetime | None:
    """When the session of a valid token began (UTC), None for an invalid or expired token."""
    started = sessions.token_started(secret, token)
    return None if started is None else datetime.fromtimestamp(started, timezone.utc)


def reviewed_since(backend: Backend, user: SessionUser, *, since: datetime) -> int:
    """How many stacks ``user`` answered since ``since``: the Review page's session counter, read from
    the database so that it survives a reload."""
    with backend.factory() as session:
        return int(session.scalar(select(func.count()).select_from(Review).where(
            Review.user_id == user.id, Review.created_at >= since)))


def resume(session: Session, *, token: str | None, secret: str) -> SessionUser | None:
    """The user of a session cookie's token (None if invalid, expired or ended)."""
    user = sessions.user_for_token(session, secret, token)
    return None if user is None else SessionUser.of(user)


def current_user(session: Session, user: SessionUser) -> SessionUser | None:
    """The session's user as the database has it now: None once deactivated or their sessions
    ended (logout elsewhere, password change); the role is the current one, so a demoted admin
    loses admin pages at once."""
    from db.models import User

    row = session.get(User, user.id)
    if row is None or not row.active or row.session_version != user.session_version:
        return None
    return SessionUser.of(row)


def logout(backend: Backend, user: SessionUser) -> None:
    """End every session of ``user`` (their cookies stop working), audited."""
    from db.errors import UnknownUserError

    with backend.factory.begin() as session:
        try:
            users.end_sessions(session, user_id=user.id, actor=user.name)
        except UnknownUserError:
            log.info("logout of %s: already deactivated", user.name)


# --- reviewing ----------------------------------------------------------------------------------

@dataclass
class Backend:
    """What an app process shares between sessions: the database and the media cache."""

    engine: Engine
    factory: sessionmaker[Session]
    media: MediaCache
    video_dirs: tuple[str, ...]

    def close(self) -> None:
        """Stop background work and close connections."""
        self.media.close()
        self.engine.dispose()


def stack_loader(store_path: Path) -> Callable[[str], tuple[np.ndarray, np.ndarray | None]]:
    """``key -> (uint8 (D, H, W) volume, (H, W) outline mask or None)`` reading the volume store,
    opened read-only on first use."""
    lock = threading.Lock()

    @functools.cache
    def store() -> VolumeStore:
        return VolumeStore(store_path, readonly=True)

    def load(key: str) -> tuple[np.ndarray, np.ndarray | None]:
        with lock:
            opened = store()
        stored = opened.get(key)
        # private copies: the cache outlives LMDB transactions
        return np.array(stored.volume), None if stored.mask is None else np.array(stored.mask)

    return load


def open_backend(settings: Settings, *, video_dirs: Sequence[str] = (), cache_size: int = 64) -> Backend:
    """Engine, session factory and a media cache reading ``settings.store_path``."""
    engine = make_engine(settings.db_url)
    load = stack_loader(settings.store_path)
    media = MediaCache(lambda ref: review_media(ref, load), capacity=cache_size)
    return Backend(engine=engine, factory=make_session_factory(engine), media=media,
                   video_dirs=tuple(str(d) for d in video_dirs))


@dataclass(frozen=True)
class ReviewItem:
    """A claimed stack with what the page shows about it."""

    vessel_id: int
    filename: str
    probability: float
    ref: StackRef


def _video_dirs(vessel: Stack, configured: Sequence[str]) -> tuple[str, ...]:
    """Configured folders, then the competition layout: ``<metadata folder>/<split>`` and the folder itself."""
    dirs = list(configured)
    if vessel.metadata_file:
        folder = Path(vessel.metadata_file).parent
        dirs += [str(folder / vessel.split), str(folder)]
    return tuple(dirs)


def _items(session: Session, claims: Sequence[queue.ClaimedStack], video_dirs: Sequence[str]) -> list[ReviewItem]:
    vessels = {v.id: v for v in session.scalars(select(Stack).where(Stack.id.in_([c.vessel_id for c in claims])))}
    items = []
    for claim in claims:
        vessel = vessels[claim.vessel_id]
        roi = None if vessel.roi_x is None else (vessel.roi_x, vessel.roi_y, vessel.roi_width, vessel.roi_height)
        ref = StackRef(filename=vessel.filename, key=key_for(vessel.filename), roi=roi,
                       video_dirs=_video_dirs(vessel, video_dirs))
        items.append(ReviewItem(claim.vessel_id, claim.filename, claim.probability, ref))
    return items


PRELOADED = 2
"""Stacks a reviewer's viewer holds: the one shown and the next, already loaded in the browser."""


def review_items(backend: Backend, user: SessionUser, *, ahead: int = PRELOADED,
                 order: str | None = None) -> list[ReviewItem]:
    """The user's next ``ahead`` stacks, claimed (:func:`db.queue.claim_window`): the one to show
    first, then those the browser loads ahead. After a reload the same claims come back."""
    return run_transaction(backend.factory, lambda session: _items(
        session, queue.claim_window(session, user_id=user.id, size=ahead, order=order), backend.video_dirs),
        write=True)


@dataclass(frozen=True)
class Answer:
    """One answer as the review viewer sends it from the browser."""

    vessel_id: int
    answer: str
    seconds: float | None = None


def answers_from_viewer(raw: object) -> list[Answer]:
    """The well-formed answers in what the viewer sent (browser input: anything else is dropped).

    >>> answers_from_viewer([{"id": 3, "answer": "flowing", "seconds": 2.5}, {"id": "x"}, 7])
    [Answer(vessel_id=3, answer='flowing', seconds=2.5)]
    """
    answers = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict) or type(entry.get("id")) is not int or not isinstance(entry.get("answer"), str):
            continue
        seconds = entry.get("seconds")
        valid = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds < 86_400
        answers.append(Answer(entry["id"], entry["answer"], float(seconds) if valid else None))
    return answers


@dataclass(frozen=True)
class AnswerOutcome:
    """What became of answers sent from the viewer: ``stored`` (vessel ids), ``refused`` (vessel id,
    why: never stored, the reviewer is told) and ``failed`` (vessel id, why: not stored yet, the
    viewer keeps the answer and sends it again)."""

    stored: tuple[int, ...] = ()
    refused: tuple[tuple[int, str], ...] = ()
    failed: tuple[tuple[int, str], ...] = ()


def record_answers(backend: Backend, user: SessionUser, answers: Sequence[Answer], *,
                   offered: Collection[int]) -> AnswerOutcome:
    """Store answers sent from the viewer, each in its own transaction (one failure loses no other).

    An answer the user already gave counts as stored (a resend whose acknowledgement was lost).
    Otherwise the stack must have been ``offered`` to this page or be claimed by the user (a
    reload resends what the tab kept); :func:`db.queue.submit_review` then applies its rules (a
    stack someone else claimed meanwhile is refused). Database errors (a lost connection, a
    lock) leave the answer to be sent again.
    """
    stored, refused, failed = [], [], []
    for given in answers:
        def store(session: Session, given: Answer = given) -> None:
            before = session.scalar(select(Review.answer).where(Review.vessel_id == given.vessel_id,
                                                                 Review.user_id == user.id))
            if before == given.answer:
                return
            if given.vessel_id not in offered and given.vessel_id not in {
                    claim.vessel_id for claim in queue.held_claims(session, user_id=user.id)}:
                raise DatabaseInputError("this stack was not offered to you; answer not stored")
            queue.submit_review(session, user_id=user.id, vessel_id=given.vessel_id, answer=given.answer,
                                seconds=given.seconds)

        try:
            run_transaction(backend.factory, store, write=True)
        except DatabaseInputError as error:
            refused.append((given.vessel_id, str(error)))
        except SQLAlchemyError as error:
            log.warning("answer to stack %d not stored yet: %s", given.vessel_id, error)
            failed.append((given.vessel_id, str(getattr(error, "orig", None) or error).splitlines()[0]))
        else:
            stored.append(given.vessel_id)
    return AnswerOutcome(tuple(stored), tuple(refused), tuple(failed))


def prefetch(backend: Backend, items: Sequence[ReviewItem]) -> None:
    """Start preparing the media of ``items`` in the background."""
    backend.media.prefetch([item.ref for item in items])


def queue_progress(backend: Backend) -> queue.QueueStats:
    """Counts for the progress display (routed to humans, done, claimed)."""
    with backend.factory() as session:
        return queue.queue_stats(session)


def media_for(backend: Backend, item: ReviewItem) -> ReviewMedia:
    """The prepared video, frames and context of a stack (waits only if not prefetched)."""
    return backend.media.get(item.ref)


# --- what the model sees ------------------------------------------------------------------------

def explained_run_dir(session: Session) -> Path | None:
    """The run folder of the model the queue serves (the active policy's run, else the newest),
    when it is a finished run on this machine; None otherwise."""
    from core.model.rundir import RunDir
    from db.models import ModelRun

    rule = queue.queue_rule(session)
    run = None if rule is None else session.get(ModelRun, rule.model_run_id)
    if run is None:
        return None
    folder = Path(run.checkpoint_path or run.name)
    return folder if RunDir(folder).is_complete() else None


def load_explainer(run_dir: Path):  # noqa: ANN201 - core.model.saliency.Explainer (torch is imported on first use)
    """Grad-CAM for the members of the run at ``run_dir`` (loaded on the CPU)."""
    from core.model.predict import load_ensemble
    from core.model.saliency import Explainer

    return Explainer(load_ensemble(run_dir, device="cpu"))


def model_view(explainer, media: ReviewMedia) -> bytes:  # noqa: ANN001 - core.model.saliency.Explainer
    """The review video with the ensemble's Grad-CAM blended in, at the same size and frame rate."""
    from core.model.saliency import overlay
    from triage_app.media import encode_frames

    saliency = explainer.explain(media.filename, media.volume, media.mask)
    return encode_frames(overlay(media.volume, saliency), scale=media.scale)


# --- thresholds ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SavedPolicy:
    """The active policy as the Thresholds page starts from it."""

    id: int
    model_run_id: int
    t_low: float | None
    t_high: float | None
    reviews_required: int
    sensitivity: float | None
    specificity: float | None
    confidence: float | None
    created_by: str | None
    created_at: object
    promise: str = "relative"
    """Which promise the targets keep (``core.policy.promise.PROMISES``)."""


def saved_policy(backend: Backend) -> SavedPolicy | None:
    """The active policy, or None when there is none (every scored stack then goes to humans)."""
    from db.policy import active_policy

    with backend.factory() as session:
        policy = active_policy(session)
        if policy is None:
            return None
        return SavedPolicy(id=policy.id, model_run_id=policy.model_run_id, t_low=policy.t_low, t_high=policy.t_high,
                           reviews_required=policy.reviews_required, sensitivity=policy.target_sensitivity,
                           specificity=policy.target_specificity, confidence=policy.confidence,
                           created_by=policy.created_by, created_at=policy.created_at, promise=policy.promise)


def queue_probabilities(backend: Backend, *, model_run_id: int) -> np.ndarray:
    """Scores of the run's stacks that a policy can route to humans: those without a crowd answer
    (the queue never routes a stack whose crowd label is known), as the Dashboard counts them."""
    from db.models import Prediction

    with backend.factory() as session:
        return np.asarray(session.scalars(select(Prediction.probability).where(
            Prediction.model_run_id == model_run_id, Prediction.review_level.is_not(None))).all(), dtype=float)


def model_runs(backend: Backend) -> dict[int, str]:
    """Model runs, newest first, as id -> short name (the run folder's name, not its full path)."""
    with backend.factory() as session:
        return {run.id: f"{Path(run.name).name} (run {run.id})" for run in predictions.list_model_runs(session)}


def thresholds_page_data(backend: Backend, *, model_run_id: int, sensitivity: float, specificity: float,
                         confidence: float, reviews_required: int = 1,
                         promise: str = DEFAULT_PROMISE) -> tuning.ThresholdsData:
    """What the Thresholds page shows (see :func:`triage_app.tuning.thresholds_data`), read in one session."""
    with backend.factory() as session:
        return tuning.thresholds_data(session, model_run_id=model_run_id, sensitivity=sensitivity,
                                      specificity=specificity, confidence=confidence,
                                      reviews_required=reviews_required, promise=promise)


def activate_thresholds(backend: Backend, admin: SessionUser, *, model_run_id: int, t_low: float | None,
                        t_high: float | None, reviews_required: int, sensitivity: float, specificity: float,
                        confidence: float, promise: str = DEFAULT_PROMISE, stall_share: float | None = None) -> int:
    """Save thresholds chosen on the Thresholds page as the active policy (audited); its id."""
    return run_transaction(backend.factory, lambda session: tuning.save_thresholds(
        session, model_run_id=model_run_id, t_low=t_low, t_high=t_high, reviews_required=reviews_required,
        sensitivity=sensitivity, specificity=specificity, confidence=confidence, actor=admin.name, promise=promise,
        stall_share=stall_share).id, write=True)


def project_standing(backend: Backend, *, model_run_id: int, t_low: float | None, t_high: float | None,
                     sensitivity: float, specificity: float, confidence: float) -> pd.DataFrame:
    """Each project's standing under proposed thresholds (:func:`triage_app.projects.project_standing`)."""
    with backend.factory() as session:
        return projects.project_standing(session, model_run_id=model_run_id, t_low=t_low, t_high=t_high,
                                         sensitivity=sensitivity, specificity=specificity, confidence=confidence)


def active_projects(backend: Backend) -> pd.DataFrame | None:
    """Each project's standing under the active policy (:func:`triage_app.projects.active_table`); None
    when that policy was saved without the project gate."""
    with backend.factory() as session:
        return projects.active_table(session)


def set_known_answer_rate(backend: Backend, admin: SessionUser, *, rate: float) -> None:
    """Change how often the queue serves known-answer stacks (audited)."""
    run_transaction(backend.factory, lambda session: known_answers.set_known_answer_rate(
        session, rate=rate, actor=admin.name), write=True)


# --- crowd errors and second looks ---------------------------------------------------------------

def crowd_errors(backend: Backend, *, model_run_id: int) -> crowd_error_search.CrowdErrorSearch:
    """The run's likely crowd errors not yet looked at again (:func:`triage_app.crowd_errors.likely_crowd_errors`)."""
    with backend.factory() as session:
        return crowd_error_search.likely_crowd_errors(session, model_run_id=model_run_id)


def queue_second_looks(backend: Backend, admin: SessionUser, *, model_run_id: int, flagged: pd.DataFrame) -> int:
    """Queue flagged stacks for an admin's second look (audited); how many were not queued before."""
    return run_transaction(backend.factory, lambda session: second_look.request_second_looks(
        session, stacks=flagged, model_run_id=model_run_id, actor=admin.name), write=True)


def second_looks(backend: Backend) -> pd.DataFrame:
    """Every queued second look with what it found (:func:`db.second_look.second_looks_frame`)."""
    with backend.factory() as session:
        return second_look.second_looks_frame(session)


# --- dashboard, export, users --------------------------------------------------------------------

QUEUE_ORDERS = order_setting.ORDERS
"""The orders an admin may choose for the review queue (``db.queue_order``)."""


def policy_history(backend: Backend) -> pd.DataFrame:
    """Every saved policy with the share of its run's stacks it decides automatically
    (:func:`triage_app.retraining.policy_history`), for the Dashboard's learning chart."""
    with backend.factory() as session:
        return retraining.policy_history(session)


def queue_order(backend: Backend) -> str:
    """The admin's order of the review queue (:data:`db.queue_order.ORDERS`)."""
    with backend.factory() as session:
        return order_setting.queue_order(session)


def set_queue_order(backend: Backend, admin: SessionUser, *, order: str) -> None:
    """Change the order of the review queue (audited)."""
    run_transaction(backend.factory, lambda session: order_setting.set_queue_order(
        session, order=order, actor=admin.name), write=True)


def _reviewer_skill(session: Session) -> pd.DataFrame:
    """Per reviewer: known answers (stalled, flowing) and sensitivity / specificity with 95 % intervals
    (Beta posteriors under ``core.labels.skill``'s stated prior); empty without known-answer reviews."""
    reviews = known_answers.known_answer_reviews(session)
    if reviews.empty:
        return pd.DataFrame(columns=SKILL_COLUMNS)
    table = ReviewerSkill().fit(reviews.rename(columns={"user": "reviewer"})).table()
    return table.rename(columns={"reviewer": "user"}).loc[:, SKILL_COLUMNS]


def dashboard_data(backend: Backend) -> dict[str, pd.DataFrame | float]:
    """Frames for the Dashboard: ``per_hour`` reviews, ``agreement`` per reviewer, reviewer ``skill``
    from known-answer stacks, model-vs-human ``disagreements`` (for the run the queue serves, at
    its decision threshold: filename, probability, "model says", "humans say", reviews),
    ``reviews`` (every review) and ``scores`` (filename, probability of the reviewed stacks), and
    the ``threshold`` used."""
    from db.models import ModelRun

    with backend.factory() as session:
        rule = queue.queue_rule(session)
        data = {"per_hour": app_queries.reviews_per_hour(session),
                "agreement": app_queries.reviewer_agreement(session), "skill": _reviewer_skill(session),
                "reviews": queue.reviews_frame(session)}
        threshold = 0.5
        if rule is None:
            wrong = pd.DataFrame(columns=["filename", "probability", "human", "n_reviews"])
            data["scores"] = pd.DataFrame(columns=["filename", "probability"])
        else:
            run = session.get(ModelRun, rule.model_run_id)
            threshold = run.threshold if run.threshold is not None else 0.5
            wrong = app_queries.model_human_disagreements(session, model_run_id=rule.model_run_id,
                                                          threshold=threshold)
            data["scores"] = app_queries.reviewed_scores(session, model_run_id=rule.model_run_id)
    names = {1: "stalled", 0: "flowing"}
    data["disagreements"] = pd.DataFrame({
        "filename": wrong["filename"], "probability": wrong["probability"],
        "model says": (wrong["probability"] >= threshold).astype(int).map(names),
        "humans say": wrong["human"].map(names), "reviews": wrong["n_reviews"]})
    data["threshold"] = threshold
    return data


def export_bytes(backend: Backend, *, suffix: str, actor: str | None = None) -> bytes:
    """The final labels with provenance as a ``.csv`` or ``.parquet`` file's bytes; the download is
    audited (``export.download``, by ``actor``)."""
    from db.audit import record_event
    from db.export import write_export

    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"export format must be .csv or .parquet, not {suffix!r}")
    with tempfile.TemporaryDirectory(prefix="stalltriage-export-") as tmp:
        path = Path(tmp) / f"labels{suffix}"
        with backend.factory() as session:
            summary = write_export(session, path=path)
        with backend.factory.begin() as session:
            record_event(session, actor=actor, action="export.download", entity="export",
                         details={"format": suffix.lstrip("."), "rows": summary.rows})
        return path.read_bytes()


def users_frame(backend: Backend) -> pd.DataFrame:
    """Every user: id, name, role, active, created_at (never the password hash)."""
    with backend.factory() as session:
        return pd.DataFrame([{"id": u.id, "name": u.name, "role": u.role, "active": u.active,
                              "created_at": u.created_at} for u in users.list_users(session, include_inactive=True)])


def user_audit_frame(backend: Backend, *, limit: int = 50) -> pd.DataFrame:
    """The newest audited user changes and logins: at, actor, action, user, details."""
    from db.audit import recent_events

    with backend.factory() as session:
        events = recent_events(session, limit=limit, entity="user")
        return pd.DataFrame([{"at": e.at, "actor": e.actor, "action": e.action,
                              "user": (e.details or {}).get("name", e.actor if e.action.startswith("login") else None),
                              "details": ", ".join(f"{k} {v}" for k, v in (e.details or {}).items() if k != "name")}
                             for e in events], columns=["at", "actor", "action", "user", "details"])


def change_user(backend: Backend, admin: SessionUser, action: str, **kwargs: object) -> None:
    """Apply a user change as ``admin`` (audited): ``add`` (name, password, role), ``role``
    (user_id, role), ``password`` (user_id, password) or ``deactivate`` (user_id).

    Raises ``db.errors.DatabaseInputError`` with a message for the page on bad input.
    """
    functions = {"add": users.add_user, "role": users.set_role, "password": users.set_password,
                 "deactivate": users.deactivate_user}
    if action not in functions:
        raise ValueError(f"unknown user action {action!r}")
    with backend.factory.begin() as session:
        functions[action](session, actor=admin.name, **kwargs)
