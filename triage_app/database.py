"""Opening the database for one command: schema check, session, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session


@contextmanager
def command_session(url: str, *, write: bool = False) -> Iterator[Session]:
    """A session on the database at ``url`` for the length of one command.

    The schema is checked first, so a command run before ``stalltriage db upgrade`` stops with
    one clear line instead of an SQL traceback; a SQLite file that does not exist is not created
    (a mistyped path would otherwise leave an empty database behind). With ``write=True`` the session runs in one
    transaction that commits when the block ends and rolls back if it raises.

    Raises
    ------
    db.migrate.SchemaError
        The database does not exist, has no tables yet or is at another revision.
    """
    from db.engine import make_engine, make_session_factory
    from db.migrate import SchemaError, check_schema

    from sqlalchemy.engine import make_url

    missing = missing_sqlite_file(url)
    if missing is not None:
        raise SchemaError(f"no database at {missing}; run `stalltriage db upgrade` first")
    try:
        check_schema(url)
    except SchemaError as err:
        raise SchemaError(f"{make_url(url).render_as_string(hide_password=True)}: {err}") from err
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with (factory.begin() if write else factory()) as session:
            yield session
    finally:
        engine.dispose()


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` if it does not exist (opening it would create it), else None."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() or parsed.database.startswith("file:") else path
