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
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable, DropTable
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
    One name names one set of columns: the table object and its DDL are made once per process, so
    the statements over it compile once too (at a batch of a thousand rows, compiling them anew
    cost about as much as the server's work).
    """
    connection = session.connection()
    table, create, drop = _stage_table(name, tuple(types.items()), type(connection.dialect))
    connection.exec_driver_sql(create)
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
        connection.exec_driver_sql(drop)


@cache
def _stage_table(name: str, columns: tuple[tuple[str, TypeEngine], ...],
                 dialect: type[Dialect]) -> tuple[Table, str, str]:
    """The staging table ``stage_<name>`` and its CREATE and DROP statements in ``dialect``."""
    table = Table(f"stage_{name}", MetaData(), *(Column(column, type_) for column, type_ in columns),
                  prefixes=["TEMPORARY"])
    return table, *(str(ddl(table).compile(dialect=dialect())) for ddl in (CreateTable, DropTable))


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
