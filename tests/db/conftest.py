"""Helpers for database tests: a session factory on the per-test database (see tests/fixtures/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh, migrated database (SQLite and PostgreSQL)."""
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()
