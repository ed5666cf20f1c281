"""Fixtures of the browser tests: a served app over a prepared database, or a skip (a failure in CI)
when Chromium or Playwright is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.app_data import AppData
from testkit.app_server import CHROMIUM, prepare_app_data, serve

REQUIRE_ENV = "STALLTRIAGE_REQUIRE_BROWSER"


def _require_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"Chromium not found at {CHROMIUM} (set CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed"
    if missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing} ({REQUIRE_ENV}=1)")
        pytest.skip(missing)


@pytest.fixture
def served(sqlite_db_url: str, tmp_path: Path) -> Iterator[tuple[str, AppData]]:
    """`stalltriage app` on a free port over a prepared database; yields its URL and the data."""
    _require_browser()
    data = prepare_app_data(tmp_path, sqlite_db_url)
    with serve(data.settings, tmp_path / "app.log") as url:
        yield url, data
