"""Users: argon2id password hashes, roles (reviewer, admin), authentication; every change audited."""

from __future__ import annotations

import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.audit import record_event
from db.errors import DatabaseInputError, UnknownUserError
from db.models import ROLES, User

log = logging.getLogger(__name__)

_hasher = PasswordHasher()  # argon2id with the library's recommended (RFC 9106 low-memory) costs
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; safe to store)."""
    return _hasher.hash(password)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise DatabaseInputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


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


def authenticate(session: Session, *, name: str, password: str) -> User | None:
    """The active user when ``password`` matches, else None (same answer for unknown names).

    A hash made with outdated cost parameters is upgraded on success (the caller commits).
    """
    user = session.scalar(select(User).where(User.name == name.strip(), User.active.is_(True)))
    if user is None:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        log.info("failed login for %s", name)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_password(session: Session, *, user_id: int, password: str, actor: str | None = None) -> None:
    """Replace a user's password."""
    _check_password(password)
    user = get_user(session, user_id=user_id)
    user.password_hash = hash_password(password)
    record_event(session, actor=actor, action="user.password", entity="user", entity_id=user.id,
                 details={"name": user.name})


def set_role(session: Session, *, user_id: int, role: str, actor: str | None = None) -> None:
    """Change a user's role."""
    _check_role(role)
    user = get_user(session, user_id=user_id)
    old, user.role = user.role, role
    record_event(session, actor=actor, action="user.role", entity="user", entity_id=user.id,
                 details={"name": user.name, "from": old, "to": role})


def deactivate_user(session: Session, *, user_id: int, actor: str | None = None) -> None:
    """Stop a user from logging in and reviewing; their past reviews stay."""
    user = get_user(session, user_id=user_id)
    user.active = False
    record_event(session, actor=actor, action="user.deactivate", entity="user", entity_id=user.id,
                 details={"name": user.name})
