"""Schema migrations, driven from Python on the command's engine: ``upgrade(engine)``, ``downgrade`` and friends.

The Alembic environment lives in the ``migrations`` package, shipped inside the wheel; its
configuration is built here, so no ``alembic.ini`` or working directory is needed. Migrations run
on a connection of the caller's engine (no engine of their own), in one transaction, so a failed
one leaves nothing half-done. On SQLite, foreign keys are off while they run: batch migrations
copy tables, and dropping a referenced table with foreign keys on would cascade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

import migrations


class SchemaError(RuntimeError):
    """The database's schema is missing or at another revision; the message says what to run."""


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction for Alembic; on SQLite with foreign keys off until it ends."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        if sqlite:  # a PRAGMA that only works outside a transaction, so on the driver's connection
            foreign_keys = driver.execute("PRAGMA foreign_keys").fetchone()[0]
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                driver.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")


def _run(engine: Engine, action: str, revision: str) -> None:
    from alembic import command  # imported here: it logs its plugin set-up on import

    config = alembic_config()
    with _migration_connection(engine) as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (default: the newest)."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database down to ``revision`` (``"base"`` removes every table)."""
    _run(engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest revision in the packaged migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def check_schema(engine: Engine) -> None:
    """Make sure the database is at the newest revision.

    Raises
    ------
    SchemaError
        The database is empty or at another revision; the message says what to run.
    """
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaError(schema_advice(current))


def is_known_revision(revision: str) -> bool:
    """Whether the packaged migrations hold ``revision`` (an unknown one comes from a newer StallTriage)."""
    return revision in {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def schema_advice(current: str | None) -> str:
    """What to do about a database at revision ``current`` (not the newest): one line for the user.

    A revision the packaged migrations do not know was written by a newer StallTriage; ``db
    upgrade`` cannot start from it, so the advice is to use that newer version instead.
    """
    if current is not None and not is_known_revision(current):
        return (f"the database is at schema revision {current!r}, which this version of StallTriage does not know "
                f"(its newest is {head_revision()}): it was made by a newer StallTriage; use that version")
    state = "has no tables yet" if current is None else f"is at schema revision {current}"
    return f"the database {state}, this program needs revision {head_revision()}: run `stalltriage db upgrade` first"


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse to touch one at an older revision.

    Commands that write (ingest, predict) call this so that a first run needs no ``db upgrade``;
    migrating existing data stays an explicit ``stalltriage db upgrade``.

    Raises
    ------
    SchemaError
        The database holds an older (or unknown) schema revision.
    """
    if current_revision(engine) is None:
        upgrade(engine)
    check_schema(engine)
