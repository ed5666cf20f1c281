"""Signed, expiring session tokens: a reload or a bookmarked URL keeps the user logged in.

The browser keeps a cookie holding ``{user id, session version, when the session began}`` signed
with the server's secret (itsdangerous, HMAC-SHA1 with a timestamp). When the session began is
what the Review page counts "Reviewed this session" from, so the count survives a reload. A token is accepted only while it is younger than
``MAX_AGE_S``, its signature matches, and the user is still active with the same
``session_version``: logging out, changing the password and deactivation raise that version
(``db.users``), which ends every session of the user in every browser.

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
_SALT = "stalltriage-session"


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
