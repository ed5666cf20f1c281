"""Set-based writes: rows loaded into a temporary staging table, then a few statements over it.

Writing many rows one statement (or one ORM object) at a time costs a round trip and a plan per
row; at a million rows that is the difference between minutes and hours. Instead the rows are
loaded into a temporary table in one go (PostgreSQL: ``COPY`` through psycopg; SQLite: one
``executemany``; both without per-row SQL parsing), the caller writes the real tables with
``INSERT … SELECT`` / ``UPDATE … FROM`` joins on it, and the table is dropped when the block
ends. Everything runs on the session's connection, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

if TYPE_CHECKING:
    import pandas as pd

ANALYZE_MIN_ROWS = 10_000
"""Refresh a table's planner statistics after a bulk write of at least this many rows."""

SQLITE_ANALYSIS_LIMIT = 1000
"""Rows SQLite samples per index when it gathers statistics (keeps ANALYZE fast on big tables)."""


@contextmanager
def staged(session: Session, name: str, rows: Iterable[Sequence[Any]], types: dict[str, TypeEngine]) -> Iterator[Table]:
    """Load ``rows`` (tuples in the order of ``types``) into a temporary table ``stage_<name>`` for the block's length.

    Values are plain Python values (None for NULL); :func:`frame_rows` turns a frame into such rows.
    The same name each time lets SQLAlchemy reuse the compiled statements over the table.
    """
    connection = session.connection()
    table = Table(f"stage_{name}", MetaData(), *(Column(name, type_) for name, type_ in types.items()),
                  prefixes=["TEMPORARY"])
    table.create(connection)
    try:
        driver = connection.connection.driver_connection
        if connection.dialect.name == "postgresql":
            with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(types)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            driver.executemany(f"INSERT INTO {table.name} VALUES ({', '.join('?' * len(types))})", rows)
        yield table
    finally:
        table.drop(connection)


def frame_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    """The frame's rows as tuples of plain Python values, missing values (NaN, None, pd.NA) as None."""
    return frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)


def analyze(session: Session, table: str, rows: int) -> None:
    """Refresh the planner statistics of ``table`` after writing ``rows`` rows (when that is many).

    A table that grew from empty to a million rows in one transaction would otherwise be planned
    as if it were still tiny until autovacuum (PostgreSQL) or never (SQLite) noticed.
    """
    if rows < ANALYZE_MIN_ROWS:
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
    connection.execute(text(f"ANALYZE {table}"))
