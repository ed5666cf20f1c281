"""The app in a real headless Chromium against `stalltriage app` on a real port.

Logs in, reviews 5 stacks with the keyboard only and checks the rows in the database, checks that
the review video really plays, saves a policy on the Thresholds page as an admin and downloads
the export. Screenshots of every page go to docs/screenshots/.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from db.engine import make_engine
from db.models import Review, TriagePolicy, User, Vessel
from tests.fixtures.app_data import ADMIN, REVIEWER, AppData, build_app_data

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REQUIRE_ENV = "STALLTRIAGE_REQUIRE_BROWSER"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    data = build_app_data(tmp_path, sqlite_db_url)
    port = _free_port()
    command = [shutil.which("stalltriage") or sys.executable, *([] if shutil.which("stalltriage") else
                                                               ["-m", "triage_app.cli"]),
               "app", "--db", data.settings.db_url, "--store", str(data.settings.store_path), "--port", str(port)]
    log = (tmp_path / "app.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start: {(tmp_path / 'app.log').read_text()}") from None
                time.sleep(0.3)
        yield url, data
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _shot(page, name: str, height: int = 1000) -> None:
    """Screenshot at a viewport ``height`` tall enough for the page (Streamlit scrolls inside the page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(1000)  # let charts and images finish drawing
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def _log_in(page, url: str, who: tuple[str, str]) -> None:
    page.goto(url)
    page.get_by_label("User name").fill(who[0])
    page.get_by_role("textbox", name="Password").fill(who[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Review").wait_for()


def _shown_filename(page) -> str:
    caption = page.get_by_text("full frame, the ROI boxed in cyan").first
    caption.wait_for()
    return caption.inner_text().split(":")[0].strip()


def _video_plays(page) -> dict:
    video = page.locator("video").first
    video.wait_for()
    return video.evaluate("""async (v) => {
        v.muted = true;
        await v.play();
        const start = Date.now();
        while ((v.readyState < 2 || v.currentTime <= 0) && Date.now() - start < 10000) {
            await new Promise(r => setTimeout(r, 100));
        }
        const state = {readyState: v.readyState, videoWidth: v.videoWidth, currentTime: v.currentTime};
        v.currentTime = Math.max(0, v.duration - 0.05);  // near the end: a looping video starts over
        const seek = Date.now();
        while (!(v.currentTime < v.duration / 2 && !v.paused) && Date.now() - seek < 10000) {
            await new Promise(r => setTimeout(r, 100));
        }
        state.looped = v.currentTime < v.duration / 2 && !v.paused;
        return state;
    }""")


def _reviews(url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(Vessel.filename, User.name, Review.answer)
                                  .join(Vessel, Vessel.id == Review.vessel_id).join(User, User.id == Review.user_id)
                                  .order_by(Review.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_review_thresholds_export_in_a_real_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    url, data = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("button", name="Log in").wait_for()
        _shot(page, "login")

        _log_in(page, url, REVIEWER)
        state = _video_plays(page)
        assert state["readyState"] >= 2 and state["videoWidth"] > 0 and state["currentTime"] > 0, state
        assert state["looped"], state
        _shot(page, "review", height=1300)

        answered = []
        for key, answer in zip("sfubs", ["stalled", "flowing", "unsure", "bad_stack", "stalled"]):
            shown = _shown_filename(page)
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press(key)
            page.wait_for_function("(name) => ![...document.querySelectorAll('[data-testid=stImageCaption]')]"
                                   ".some(e => e.innerText.startsWith(name + ':'))", arg=shown)
            answered.append((shown, REVIEWER[0], answer))
        assert _reviews(data.settings.db_url) == answered
        assert len({filename for filename, _, _ in answered}) == 5

        page.get_by_role("button", name="Log out").click()
        _log_in(page, url, ADMIN)
        page.get_by_role("link", name="Dashboard").click()
        page.get_by_role("heading", name="Dashboard").wait_for()
        page.locator(".js-plotly-plot").first.wait_for()
        _shot(page, "dashboard", height=1100)

        page.get_by_role("link", name="Thresholds").click()
        page.get_by_role("heading", name="Thresholds").wait_for()
        for label, value in (("Target sensitivity", "0.85"), ("Target specificity", "0.9"),
                             ("Confidence of the bounds", "0.8")):
            field = page.get_by_label(label)
            field.fill(value)
            field.press("Enter")
            page.wait_for_timeout(500)
        page.locator(".js-plotly-plot").nth(2).wait_for()
        _shot(page, "thresholds", height=2300)
        page.get_by_role("button", name="Save as the active policy").click()
        page.get_by_text("as the active policy: the review queue follows it now").wait_for()
        engine = make_engine(data.settings.db_url)
        with engine.connect() as connection:
            saved = connection.execute(select(TriagePolicy.created_by, TriagePolicy.target_sensitivity,
                                              TriagePolicy.active)).all()
        engine.dispose()
        assert saved == [(ADMIN[0], 0.85, True)]

        page.get_by_role("link", name="Export").click()
        page.get_by_role("heading", name="Export").wait_for()
        _shot(page, "export")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        path = tmp_path / "export.csv"
        download.value.save_as(path)
        exported = pd.read_csv(path)
        assert len(exported) == 220
        reviewed = exported[exported["filename"].isin([f for f, _, _ in answered])]
        assert len(reviewed) == 5

        page.get_by_role("link", name="Users").click()
        page.get_by_role("heading", name="Users").wait_for()
        _shot(page, "users")
        browser.close()
