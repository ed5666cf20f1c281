"""Engines and sessions from a database URL: a SQLite file (default) or PostgreSQL via psycopg 3.

Nothing connects at import time: callers build an engine with :func:`make_engine` from the one
URL that ``triage_app.settings.resolve`` gives them.

SQLite is set up for several processes sharing one file: WAL journal, foreign keys on, a busy
timeout, and transactions begun explicitly so that a writer can ask for ``BEGIN IMMEDIATE``
(take the write lock first, never fail half-way when upgrading a read lock). PostgreSQL URLs
without a driver (``postgresql://``) are routed to psycopg 3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

IMMEDIATE = {"sqlite_begin": "IMMEDIATE"}
"""Execution options for a session whose transaction writes (``Session.connection(execution_options=IMMEDIATE)``)."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Route driver-less PostgreSQL URLs to psycopg 3; leave others as they are."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, foreign_keys: bool = True, echo: bool = False) -> Engine:
    """Create an engine for ``url``; a SQLite file's folder is created if missing.

    Parameters
    ----------
    url
        SQLAlchemy URL, e.g. ``sqlite:////data/stalltriage.db`` or ``postgresql://user@host/db``.
    foreign_keys
        Enforce foreign keys on SQLite (migrations turn this off while they copy tables).
    echo
        Log every SQL statement.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # No pre-ping (a round trip per transaction); a dropped connection is discarded on its first error.
        return create_engine(url, echo=echo, pool_recycle=3600)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    _configure_sqlite(engine, foreign_keys=foreign_keys)
    return engine


@contextmanager
def open_engine(url: str, **options: bool) -> Iterator[Engine]:
    """An engine for ``url`` (options as :func:`make_engine`), disposed when the block ends.

    A command opens one and passes it (or sessions from it) down; nothing below opens another.
    """
    engine = make_engine(url, **options)
    try:
        yield engine
    finally:
        engine.dispose()


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API objects
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # noqa: ANN001 - SQLAlchemy Connection
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (the app shows them)."""
    return sessionmaker(engine, expire_on_commit=False)


def is_retryable(error: DBAPIError) -> bool:
    """True for errors that a fresh attempt of the same transaction can clear.

    SQLite: "database is locked"/"busy"; PostgreSQL: serialization failures and deadlocks.
    """
    if isinstance(error, OperationalError) and "locked" in str(error.orig).lower():
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in ("40001", "40P01")


def run_transaction(factory: sessionmaker[Session], work: Callable[[Session], T], *,
                    write: bool = True, attempts: int = 8) -> T:
    """Run ``work(session)`` in its own transaction, commit, and retry on transient lock errors.

    On SQLite a writing transaction begins with ``BEGIN IMMEDIATE``. ``work`` must not commit;
    it may run several times, so it must have no side effects outside the database.

    Raises the last error when every attempt failed.
    """
    for attempt in range(1, attempts):
        try:
            return _attempt(factory, work, write=write)
        except DBAPIError as error:
            if not is_retryable(error):
                raise
            log.debug("retrying transaction after %s (attempt %d)", error.orig, attempt)
            time.sleep(min(0.02 * 2 ** attempt, 1.0))
    return _attempt(factory, work, write=write)


def _attempt(factory: sessionmaker[Session], work: Callable[[Session], T], *, write: bool) -> T:
    with factory() as session, session.begin():
        if write:
            session.connection(execution_options=IMMEDIATE)
        return work(session)
