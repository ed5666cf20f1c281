"""Signed, expiring session tokens: a reload or a bookmarked URL keeps the user logged in.

The browser keeps a cookie holding ``{user id, session version, when the session began}`` signed
with the server's secret (itsdangerous, HMAC-SHA1 with a timestamp). When the session began is
what the Review page counts "Reviewed this session" from, so the count survives a reload. A
token is accepted only while it is younger than ``MAX_AGE_S``, its signature matches, and the user
is still active with the same ``session_version``: logging out, changing the password and
deactivation raise that version (``db.users``), which ends every session of the user in every
browser.

The browser never sees the token in page script: the cookie is HttpOnly, set by the server
(:mod:`triage_app.server`) in exchange for a **ticket**, a signed note of the session valid for
``TICKET_MAX_AGE_S`` that the page posts once after a login or a reload (which renews the
cookie's expiry).

The secret comes from ``STALLTRIAGE_SECRET`` or, by default, from a file created once (mode 0600)
in the folder that holds the volume store, so that every app process serving one data folder
accepts the same cookies.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from db.models import User

SECRET_ENV = "STALLTRIAGE_SECRET"
SECRET_FILE = "session-secret"
COOKIE = "stalltriage_session"
MAX_AGE_S = 12 * 3600
TICKET_MAX_AGE_S = 60
SESSION_ROUTE = "/auth/session"
"""Where the page posts a ticket for the cookie (served by :mod:`triage_app.server`)."""
LOGOUT_ROUTE = "/auth/logout"
"""Where the page asks for the cookie to be cleared."""
_SALT = "stalltriage-session"
_TICKET_SALT = "stalltriage-cookie-ticket"


def load_secret(folder: Path) -> str:
    """The signing secret: ``$STALLTRIAGE_SECRET``, else ``folder/session-secret`` (created if missing)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    path = Path(folder) / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


def issue_token(secret: str, *, user_id: int, version: int, started: float | None = None) -> str:
    """A signed token for a user at a session version; ``started`` (epoch seconds, default now) is
    when the session began, kept through later tokens of the same session."""
    return URLSafeTimedSerializer(secret, salt=_SALT).dumps(
        {"u": user_id, "v": version, "s": time.time() if started is None else started})


def issue_ticket(secret: str, *, user_id: int, version: int, started: float) -> str:
    """A short-lived ticket the page exchanges for the session cookie (:func:`token_for_ticket`)."""
    return URLSafeTimedSerializer(secret, salt=_TICKET_SALT).dumps({"u": user_id, "v": version, "s": started})


def token_for_ticket(secret: str, ticket: str, *, max_age_s: int = TICKET_MAX_AGE_S) -> str | None:
    """The session token a valid, fresh ticket stands for; None for a forged, stale or garbled one.

    The user is not looked up here: every use of the token checks the user and the session version.
    """
    try:
        payload = URLSafeTimedSerializer(secret, salt=_TICKET_SALT).loads(ticket, max_age=max_age_s)
        return issue_token(secret, user_id=int(payload["u"]), version=int(payload["v"]), started=float(payload["s"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def token_started(secret: str, token: str, *, max_age_s: int = MAX_AGE_S) -> float | None:
    """When the session of a valid token began (epoch seconds), None for an invalid or expired token."""
    try:
        payload, signed = URLSafeTimedSerializer(secret, salt=_SALT).loads(token, max_age=max_age_s,
                                                                            return_timestamp=True)
        return float(payload.get("s", signed.timestamp()))
    except (BadSignature, AttributeError, TypeError, ValueError):
        return None


def user_for_token(session: Session, secret: str, token: str | None, *, max_age_s: int = MAX_AGE_S) -> User | None:
    """The active user a token was issued to, or None (bad signature, expired, ended or deactivated)."""
    if not token:
        return None
    try:
        payload = URLSafeTimedSerializer(secret, salt=_SALT).loads(token, max_age=max_age_s)
        user = session.get(User, int(payload["u"]))
        version = int(payload["v"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if user is None or not user.active or user.session_version != version:
        return None
    return user
