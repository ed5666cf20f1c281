"""Fixtures for the app: a prepared database (SQLite, or both back ends where it matters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.app_data import AppData, build_app_data


@pytest.fixture(scope="session")
def app_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of original videos shared by every test (treat as read-only)."""
    return tmp_path_factory.mktemp("app-videos")


@pytest.fixture
def app_data(sqlite_db_url: str, tmp_path: Path, app_videos: Path) -> AppData:
    """A prepared SQLite database, store and videos (see tests/fixtures/app_data.py)."""
    return build_app_data(tmp_path, sqlite_db_url, video_root=app_videos)


@pytest.fixture
def app_data_any(db_url: str, tmp_path: Path, app_videos: Path) -> AppData:
    """The same on SQLite and on PostgreSQL."""
    return build_app_data(tmp_path, db_url, video_root=app_videos)
