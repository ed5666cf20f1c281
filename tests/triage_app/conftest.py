"""Fixtures for the app: a prepared database (SQLite, or both back ends where it matters)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.engine import make_engine, make_session_factory
from testkit.app_data import AppData, build_app_data


@pytest.fixture(scope="session")
def app_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of original videos shared by every test (treat as read-only)."""
    return tmp_path_factory.mktemp("app-videos")


@pytest.fixture
def app_data(sqlite_db_url: str, tmp_path: Path, app_videos: Path) -> AppData:
    """A prepared SQLite database, store and videos (see testkit/app_data.py)."""
    return build_app_data(tmp_path, sqlite_db_url, video_root=app_videos)


@pytest.fixture
def sessions(app_data: AppData) -> Iterator[sessionmaker[Session]]:
    """Sessions on ``app_data``'s database, for reading what a page wrote."""
    engine = make_engine(app_data.settings.db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def app_data_any(db_url: str, tmp_path: Path, app_videos: Path) -> AppData:
    """The same on SQLite and on PostgreSQL."""
    return build_app_data(tmp_path, db_url, video_root=app_videos)


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Undo AppTest's swap of ``sys.modules["__main__"]`` for the app script: process pools started
    later by other tests (spawn/forkserver) import ``__main__`` in their workers and would run the app."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
