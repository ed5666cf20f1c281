"""Start `stalltriage app` on a prepared database and a headless Chromium: shared by the browser tests
and the benchmarks that drive the app (``bench.screenshots``, ``bench.app``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import update

from db.engine import make_engine
from db.models import ModelRun
from testkit.app_data import AppData, build_app_data
from testkit.run_dir import make_run_dir
from triage_app.sessions import COOKIE
from triage_app.settings import Settings

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The review viewer's element (triage_app/viewer.py), inside the component's shadow root (Playwright's
# locators pierce it): ``data-name`` is the stack on screen ("" while none is), ``data-pending`` the
# answers the server has not acknowledged yet; VIDEO is the video on screen (the other one preloads).
STAGE = "[data-testid=review-stage]"
VIDEO = f"{STAGE} video.active"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_app_data(root: Path, db_url: str) -> AppData:
    """The app's test data, with a finished run folder of small members (so the model's view works)."""
    data = build_app_data(root, db_url)
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(update(ModelRun).values(checkpoint_path=str(make_run_dir(root / "members"))))
    engine.dispose()
    return data


@contextmanager
def serve(settings: Settings, log_path: Path) -> Iterator[str]:
    """`stalltriage app` on a free port over ``settings``' database and store; yields its URL and
    stops it at the end."""
    port = free_port()
    script = shutil.which("stalltriage")
    command = [script] if script else [sys.executable, "-m", "triage_app.cli"]
    command += ["app", "--db", settings.db_url, "--store", str(settings.store_path), "--port", str(port)]
    with log_path.open("w") as log:
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
                        raise RuntimeError(f"the app did not start: {log_path.read_text()}") from None
                    time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)


def log_in(page, url: str, who: tuple[str, str]) -> None:  # noqa: ANN001 - a Playwright page
    """Log in through the form and wait for the Review page."""
    page.goto(url)
    page.get_by_label("User name").fill(who[0])
    page.get_by_role("textbox", name="Password").fill(who[1])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Review").wait_for()
    wait_for_session_cookie(page, present=True)


def wait_for_session_cookie(page, *, present: bool, timeout_s: float = 30.0) -> None:  # noqa: ANN001 - a Playwright page
    """Wait until the browser holds the session cookie (``present``) or no longer does.

    The page asks the server to set or clear the cookie with a request of its own once it has drawn
    (:func:`triage_app.ui.sync_cookie`), so a reload right after logging in or out can beat it on a busy
    machine.
    """
    deadline = time.monotonic() + timeout_s
    while any(c["name"] == COOKIE and c["value"] for c in page.context.cookies()) != present:
        if time.monotonic() > deadline:
            raise AssertionError(f"the session cookie was {'never set' if present else 'not cleared'} "
                                 f"within {timeout_s:.0f} s")
        page.wait_for_timeout(50)


def shown_stack(page) -> str:  # noqa: ANN001 - a Playwright page
    """The filename of the stack the review viewer shows (waits until it shows one)."""
    page.locator(f"{STAGE}:not([data-name=''])").wait_for()
    return page.locator(STAGE).get_attribute("data-name")


def answer_key(page, key: str) -> str:  # noqa: ANN001 - a Playwright page
    """Press an answer key (the focus released first) on the stack shown; returns that stack's
    filename once the viewer has moved on from it (to the next stack, or to "loading")."""
    shown = shown_stack(page)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)
    page.locator(f"{STAGE}:not([data-name='{shown}'])").wait_for()
    return shown


def answers_stored(page) -> None:  # noqa: ANN001 - a Playwright page
    """Wait until the server has acknowledged every answer the viewer sent."""
    page.locator(f"{STAGE}[data-pending='0']").wait_for()
