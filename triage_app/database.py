"""Opening the database for one command: schema check, one engine, sessions from it, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker


@contextmanager
def command_sessions(url: str, *, create: bool = False) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database at ``url`` for the length of one command, all from one engine.

    The schema is checked first, so a command run before ``stalltriage db upgrade`` stops with
    one clear line instead of an SQL traceback. Without ``create`` a SQLite file that does not
    exist is not created (a mistyped path would otherwise leave an empty database behind); with
    ``create=True`` an empty or new database gets the schema first (ingest needs no
    ``db upgrade`` on a first run).

    Raises
    ------
    db.migrate.SchemaError
        The database does not exist (without ``create``), has no tables yet (without
        ``create``) or is at another revision.
    """
    from sqlalchemy.engine import make_url

    from db.engine import make_session_factory, open_engine
    from db.migrate import SchemaError, check_schema, ensure_schema

    missing = None if create else missing_sqlite_file(url)
    if missing is not None:
        raise SchemaError(f"no database at {missing}; run `stalltriage db upgrade` first")
    with open_engine(url) as engine:
        try:
            (ensure_schema if create else check_schema)(engine)
        except SchemaError as err:
            raise SchemaError(f"{make_url(url).render_as_string(hide_password=True)}: {err}") from err
        yield make_session_factory(engine)


@contextmanager
def command_session(url: str, *, write: bool = False) -> Iterator[Session]:
    """One session on the database at ``url`` for the length of one command (see :func:`command_sessions`).

    With ``write=True`` the session runs in one transaction that commits when the block ends and
    rolls back if it raises.
    """
    with command_sessions(url) as factory, (factory.begin() if write else factory()) as session:
        yield session


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` if it does not exist (opening it would create it), else None."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() or parsed.database.startswith("file:") else path
