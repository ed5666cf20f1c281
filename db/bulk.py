"""Set-based writes: a frame loaded into a temporary staging table, then a few statements over it.

Writing many rows one statement (or one ORM object) at a time costs a round trip and a plan per
row; at a million rows that is the difference between minutes and hours. Instead a frame is
loaded into a temporary table in one go (PostgreSQL: ``COPY`` through psycopg; SQLite: one
``executemany``), the caller writes the real tables with ``INSERT … SELECT`` / ``UPDATE … FROM``
joins on it, and the table is dropped when the block ends. Everything runs on the session's
connection, inside the caller's transaction.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

ANALYZE_MIN_ROWS = 10_000
"""Refresh a table's planner statistics after a bulk write of at least this many rows."""

SQLITE_ANALYSIS_LIMIT = 1000
"""Rows SQLite samples per index when it gathers statistics (keeps ANALYZE fast on big tables)."""

_names = itertools.count()


@contextmanager
def staged(session: Session, frame: pd.DataFrame, types: dict[str, TypeEngine]) -> Iterator[Table]:
    """Load ``frame`` into a temporary table (columns and types from ``types``) for the block's length.

    Missing values (NaN, None, pd.NA) become NULL; integer columns may hold missing values.
    """
    connection = session.connection()
    table = Table(f"stage_{next(_names)}", MetaData(), *(Column(name, type_) for name, type_ in types.items()),
                  prefixes=["TEMPORARY"])
    table.create(connection)
    try:
        frame = frame.loc[:, list(types)].astype({name: "Int64" for name, type_ in types.items()
                                                  if type_.python_type is int})
        if len(frame):
            if connection.dialect.name == "postgresql":
                _copy(connection, table, frame)
            else:
                rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
                connection.connection.driver_connection.executemany(
                    f"INSERT INTO {table.name} VALUES ({', '.join('?' * len(types))})", rows)
        yield table
    finally:
        table.drop(connection)


def _copy(connection, table: Table, frame: pd.DataFrame) -> None:  # noqa: ANN001 - a SQLAlchemy Connection
    """COPY the frame as CSV (an empty field is NULL, so an empty string arrives as NULL too)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="", quoting=csv.QUOTE_MINIMAL)
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(
            f"COPY {table.name} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


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
