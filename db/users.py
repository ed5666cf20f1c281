"""Users: argon2id password hashes, roles (reviewer, admin), authentication; every change audited.

Two safety rules live here, not in the pages, so that no caller (page, CLI, script) can break them:

* **The last active admin stays an admin.** Demoting or deactivating them would lock everyone out
  of the admin pages; :func:`set_role` and :func:`deactivate_user` refuse it. The active admins'
  rows are locked (``SELECT … FOR UPDATE``) before counting, so two admins demoting each other at
  once on PostgreSQL cannot both succeed.
* **Login throttling.** After ``FREE_FAILURES`` failed logins in a row for one name, each further
  attempt must wait ``BASE_DELAY_S`` doubled per extra failure (capped at ``MAX_DELAY_S``); the
  count comes from the audit log (``login.failed`` / ``login.ok`` events), so it holds across app
  processes and restarts. An attempt made too early is refused without checking the password.

``session_version`` is part of every session token the app signs: :func:`end_sessions` (logout),
:func:`set_password` and :func:`deactivate_user` raise it, which invalidates every token issued
before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.audit import record_event
from db.errors import DatabaseInputError, UnknownUserError
from db.models import USER_ROLES, AuditEvent, User, utcnow

log = logging.getLogger(__name__)

_hasher = PasswordHasher()  # argon2id with the library's recommended (RFC 9106 low-memory) costs
MIN_PASSWORD_LENGTH = 8
FREE_FAILURES = 5
BASE_DELAY_S = 5.0
MAX_DELAY_S = 900.0


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; safe to store)."""
    return _hasher.hash(password)


def _check_role(role: str) -> None:
    if role not in USER_ROLES:
        raise DatabaseInputError(f"role must be one of {', '.join(USER_ROLES)}, not {role!r}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DatabaseInputError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def add_user(session: Session, *, name: str, password: str, role: str, actor: str | None = None) -> User:
    """Create a user with a hashed password.

    Raises
    ------
    DatabaseInputError
        Empty or taken name, unknown role, or a password shorter than 8 characters.
    """
    name = name.strip()
    if not name:
        raise DatabaseInputError("user name must not be empty")
    _check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise DatabaseInputError(f"user {name!r} already exists")
    user = User(name=name, password_hash=hash_password(password), role=role, active=True)
    session.add(user)
    session.flush()
    record_event(session, actor=actor, action="user.add", entity="user", entity_id=user.id,
                 details={"name": name, "role": role})
    return user


def get_user(session: Session, *, user_id: int | None = None, name: str | None = None) -> User:
    """The active user with this id or name.

    Raises
    ------
    UnknownUserError
        No such user, or the user is deactivated.
    """
    query = select(User).where(User.active.is_(True))
    query = query.where(User.id == user_id) if user_id is not None else query.where(User.name == name)
    user = session.scalar(query)
    if user is None:
        who = f"with id {user_id}" if user_id is not None else repr(name)
        raise UnknownUserError(f"no active user {who}")
    return user


def list_users(session: Session, *, include_inactive: bool = False) -> list[User]:
    """Users sorted by name."""
    query = select(User).order_by(User.name)
    if not include_inactive:
        query = query.where(User.active.is_(True))
    return list(session.scalars(query))


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt: the user, or why not (``wait_s`` > 0 when throttled)."""

    user: User | None
    wait_s: float = 0.0


def _check(session: Session, name: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.name == name, User.active.is_(True)))
    if user is None:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def failed_logins(session: Session, *, name: str) -> tuple[int, datetime | None]:
    """Failed logins for ``name`` since its last successful one, and when the last one failed."""
    last_ok = (select(func.max(AuditEvent.id)).where(AuditEvent.actor == name, AuditEvent.action == "login.ok")
               .scalar_subquery())
    count, last = session.execute(
        select(func.count(), func.max(AuditEvent.at)).where(
            AuditEvent.actor == name, AuditEvent.action == "login.failed",
            AuditEvent.id > func.coalesce(last_ok, 0))).one()
    return int(count), last


def login_delay(failures: int) -> float:
    """Seconds an attempt must wait after ``failures`` failures in a row.

    Examples
    --------
    >>> [login_delay(n) for n in (4, 5, 6, 7)]
    [0.0, 5.0, 10.0, 20.0]
    """
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (failures - FREE_FAILURES))


def login(session: Session, *, name: str, password: str, now: datetime | None = None) -> LoginResult:
    """Authenticate with throttling; failures and successes go to the audit log.

    Refuses (``user`` None, ``wait_s`` > 0) without checking the password while the name is
    throttled (see the module docstring). The caller commits, so that the audit events stay.
    """
    name = name.strip()
    who = name[:64]  # the audit log's actor column; longer names match no user anyway
    now = now or utcnow()
    failures, last = failed_logins(session, name=who)
    if last is not None:
        wait = (last + timedelta(seconds=login_delay(failures)) - now).total_seconds()
        if wait > 0:
            record_event(session, actor=who, action="login.throttled", entity="user", at=now,
                         details={"failures": failures})
            return LoginResult(user=None, wait_s=wait)
    user = _check(session, name, password)
    if user is None:
        log.info("failed login for %s", name)
        record_event(session, actor=who, action="login.failed", entity="user", at=now, details={"failures": failures + 1})
        return LoginResult(user=None)
    record_event(session, actor=who, action="login.ok", entity="user", at=now, entity_id=user.id)
    return LoginResult(user=user)


def end_sessions(session: Session, *, user_id: int, actor: str | None = None) -> None:
    """Invalidate every session token of a user (logout)."""
    user = get_user(session, user_id=user_id)
    user.session_version += 1
    record_event(session, actor=actor, action="user.logout", entity="user", entity_id=user.id,
                 details={"name": user.name})


def _keep_an_admin(session: Session, user: User, change: str) -> None:
    """Refuse a change that would leave no active admin (admin rows locked while counting)."""
    if user.role != "admin":
        return
    admins = session.scalars(select(User.id).where(User.role == "admin", User.active.is_(True))
                             .with_for_update()).all()
    if set(admins) <= {user.id}:
        raise DatabaseInputError(f"{user.name} is the last active admin and cannot be {change}: "
                                 "make another user admin first")


def set_password(session: Session, *, user_id: int, password: str, actor: str | None = None) -> None:
    """Replace a user's password (their open sessions end)."""
    _check_password(password)
    user = get_user(session, user_id=user_id)
    user.password_hash = hash_password(password)
    user.session_version += 1
    record_event(session, actor=actor, action="user.password", entity="user", entity_id=user.id,
                 details={"name": user.name})


def set_role(session: Session, *, user_id: int, role: str, actor: str | None = None) -> None:
    """Change a user's role.

    Raises
    ------
    DatabaseInputError
        Unknown role, the user already has it, or the user is the last active admin.
    """
    _check_role(role)
    user = get_user(session, user_id=user_id)
    if user.role == role:
        raise DatabaseInputError(f"{user.name} is already {'an' if role == 'admin' else 'a'} {role}")
    if role != "admin":
        _keep_an_admin(session, user, "demoted")
    old, user.role = user.role, role
    record_event(session, actor=actor, action="user.role", entity="user", entity_id=user.id,
                 details={"name": user.name, "from": old, "to": role})


def deactivate_user(session: Session, *, user_id: int, actor: str | None = None) -> None:
    """Stop a user from logging in and reviewing (their sessions end); their past reviews stay.

    Raises
    ------
    DatabaseInputError
        The user is the last active admin.
    """
    user = get_user(session, user_id=user_id)
    _keep_an_admin(session, user, "deactivated")
    user.active = False
    user.session_version += 1
    record_event(session, actor=actor, action="user.deactivate", entity="user", entity_id=user.id,
                 details={"name": user.name})
