"""Opening the database for one command: schema check, session, clean-up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session


@contextmanager
def command_session(url: str, *, write: bool = False) -> Iterator[Session]:
    """A session on the database at ``url`` for the length of one command.

    The schema is checked first, so a command run before ``stalltriage db upgrade`` stops with
    one clear line instead of an SQL traceback. With ``write=True`` the session runs in one
    transaction that commits when the block ends and rolls back if it raises.

    Raises
    ------
    db.migrate.SchemaError
        The database has no tables yet or is at another revision.
    """
    from db.engine import make_engine, make_session_factory
    from db.migrate import check_schema

    check_schema(url)
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with (factory.begin() if write else factory()) as session:
            yield session
    finally:
        engine.dispose()
