"""Opening the database for one command: schema check, session, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def command_sessions(url: str, *, create: bool = False) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database at ``url`` for the length of one command, all from one engine.

    The schema is checked first, so a command run before ``stalltriage db upgrade`` stops with
    one clear line instead of an SQL traceback; with ``create=True`` an empty database gets the
    schema first (ingest and predict need no ``db upgrade`` on a first run).

    Raises
    ------
    db.migrate.SchemaError
        The database has no tables yet (without ``create``) or is at another revision.
    """
    from db.engine import make_session_factory, open_engine
    from db.migrate import check_schema, ensure_schema

    with open_engine(url) as engine:
        (ensure_schema if create else check_schema)(engine)
        yield make_session_factory(engine)


@contextmanager
def command_session(url: str, *, write: bool = False) -> Iterator[Session]:
    """One session on the database at ``url`` for the length of one command (see :func:`command_sessions`).

    With ``write=True`` the session runs in one transaction that commits when the block ends and
    rolls back if it raises.
    """
    with command_sessions(url) as factory, (factory.begin() if write else factory()) as session:
        yield session
