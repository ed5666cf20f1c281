"""The app in a real headless Chromium against `stalltriage app` on a real port.

A reviewer: the session survives a reload and a direct URL; the review video plays with its
orange outline (pixel check on a captured frame), which the O key toggles; the model's view
toggles with M; everything needed fits 1400x900; answer keys still work after the scrub bar and a
toggle were clicked; five stacks are answered with the keyboard only; logging out ends the
session. An admin: the last admin cannot be demoted; the Thresholds page opens on the saved
policy; the export downloads (and is audited). No page asks a host other than the app's.
Screenshots go to tmp_path only (the docs' screenshots come from bench/screenshots.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from db.engine import make_engine
from db.models import AuditEvent, Review, PolicyRecord, User, Stack
from testkit.app_data import ADMIN, REVIEWER, AppData
from testkit.app_server import (CHROMIUM, LAUNCH_ARGS, STAGE, VIDEO, answer_key, answers_stored, log_in, shown_stack,
                                wait_for_session_cookie)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 30_000


def _rows(url: str, query) -> list[tuple]:  # noqa: ANN001 - a SQLAlchemy Select
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(query).all()]
    engine.dispose()
    return rows


def _reviews(url: str) -> list[tuple]:
    return _rows(url, select(Stack.filename, User.name, Review.answer).join(Stack, Stack.id == Review.vessel_id)
                 .join(User, User.id == Review.user_id).order_by(Review.id))


def _video_plays(page) -> dict:
    video = page.locator(VIDEO)
    video.wait_for()
    return video.evaluate("""async (v) => {
        v.muted = true;
        const start = Date.now();
        while ((v.readyState < 2 || v.currentTime <= 0) && Date.now() - start < 10000) {
            if (v.paused && v.readyState >= 2) await v.play();
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


def _stage_pixels(page) -> np.ndarray:
    """The viewer's picture as the reviewer sees it (video frame plus overlays), RGB."""
    return np.asarray(Image.open(io.BytesIO(page.locator(STAGE).screenshot())).convert("RGB")).astype(int)


def _orange(rgb: np.ndarray) -> int:
    return int(((rgb[..., 0] > 200) & (rgb[..., 1] > 90) & (rgb[..., 1] < 190) & (rgb[..., 2] < 80)).sum())


def _colourful(rgb: np.ndarray) -> int:
    return int((np.abs(rgb[..., 0] - rgb[..., 2]) > 60).sum())


def _press(page, key: str) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press(key)


def _answer_with(page, url: str, key: str, count: int) -> str:
    """Press an answer key and wait until the next stack is shown and the review is stored."""
    shown = answer_key(page, key)
    answers_stored(page)
    assert len(_reviews(url)) == count
    return shown


def _reviewer_checks(page, url: str, data: AppData, shots: Path) -> None:
    log_in(page, url, REVIEWER)
    page.reload()  # the session cookie keeps the reviewer logged in
    page.get_by_role("heading", name="Review").wait_for()
    assert not page.get_by_role("button", name="Log in").count()
    state = _video_plays(page)
    assert state["readyState"] >= 2 and state["videoWidth"] > 0 and state["currentTime"] > 0, state
    assert state["looped"], state

    page.locator(VIDEO).evaluate("v => v.pause()")
    page.wait_for_timeout(300)
    with_outline = _orange(_stage_pixels(page))
    _press(page, "o")
    page.locator(f"{STAGE}[data-outline=off]").wait_for()
    without_outline = _orange(_stage_pixels(page))
    assert with_outline > 100 and without_outline < with_outline / 20, (with_outline, without_outline)

    grey = _colourful(_stage_pixels(page))
    _press(page, "m")  # the model's view, computed on demand
    page.locator(f"{STAGE}[data-view=model]").wait_for(timeout=60_000)
    page.locator(VIDEO).evaluate("v => new Promise(r => { v.pause(); v.currentTime = 1.25; "
                                 "v.addEventListener('seeked', r, {once: true}); })")
    heat = _colourful(_stage_pixels(page))
    assert grey < 20 and heat > 200, (grey, heat)
    page.screenshot(path=str(shots / "review-model-view.png"))
    _press(page, "m")
    page.locator(f"{STAGE}[data-view=plain]").wait_for()
    _press(page, "o")
    page.locator(f"{STAGE}[data-outline=on]").wait_for()

    page.set_viewport_size({"width": 1400, "height": 900})  # everything needed to answer, no scrolling
    page.wait_for_timeout(500)
    for locator in (page.locator(STAGE), page.get_by_role("button", name="Bad stack (B)"),
                    page.get_by_text("full frame, the ROI boxed in cyan"),
                    page.get_by_role("button", name="Show the model's view (M)")):
        box = locator.first.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900, box
    page.screenshot(path=str(shots / "review.png"))

    scrub = page.locator(f"{STAGE} ~ .controls .scrub")
    scrub.click(position={"x": scrub.bounding_box()["width"] * 0.74, "y": 5})
    assert page.locator(".where").inner_text() == "slice 18 / 24"
    _press(page, "ArrowRight")
    assert page.locator(".where").inner_text() == "slice 19 / 24"
    answered = [(_answer_with(page, data.settings.db_url, "s", 1), REVIEWER[0], "stalled")]
    page.get_by_text("Show model score").click()  # a toggle keeps the focus: the keys must still work
    page.get_by_text("Model probability (stalled)").wait_for()
    shown = shown_stack(page)
    page.keyboard.press("f")  # no blur first: the focus is wherever the click left it
    page.locator(f"{STAGE}:not([data-name='{shown}'])").wait_for()
    answers_stored(page)
    answered.append((shown, REVIEWER[0], "flowing"))
    assert _reviews(data.settings.db_url) == answered
    for key, answer in zip("ubs", ["unsure", "bad_stack", "stalled"]):
        answered.append((_answer_with(page, data.settings.db_url, key, len(answered) + 1), REVIEWER[0], answer))
    assert _reviews(data.settings.db_url) == answered and len({f for f, _, _ in answered}) == 5

    page.goto(f"{url}/dashboard")  # a direct URL keeps the session too
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    wait_for_session_cookie(page, present=False)
    page.reload()
    page.get_by_role("button", name="Log in").wait_for()  # the cookie no longer logs in


def _admin_checks(page, url: str, data: AppData, shots: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    log_in(page, url, ADMIN)
    page.get_by_role("link", name="Users").click()
    page.get_by_role("heading", name="Users").wait_for()
    page.locator("[data-testid=stSelectbox]").filter(has=page.get_by_text("User", exact=True)).click()
    page.get_by_role("option", name=ADMIN[0]).click()
    page.get_by_role("button", name="Apply…").click()
    page.get_by_text(f"Confirm: {ADMIN[0]}: role admin → reviewer?").wait_for()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text(f"{ADMIN[0]} is the last active admin and cannot be demoted").wait_for()
    assert _rows(data.settings.db_url, select(User.role).where(User.name == ADMIN[0])) == [("admin",)]
    page.screenshot(path=str(shots / "users.png"), full_page=True)

    page.get_by_role("link", name="Thresholds").click()
    page.get_by_role("heading", name="Thresholds").wait_for()
    page.get_by_text("No saved policy yet").wait_for()
    for label, value in (("Target sensitivity", "0.85"), ("Target specificity", "0.9"),
                         ("Confidence of the bounds", "0.8")):
        field = page.get_by_label(label)
        field.fill(value)
        field.press("Enter")
        page.wait_for_timeout(500)
        page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")  # the rerun (tuning) has finished
    page.get_by_role("button", name="Use the tuned thresholds (0.").click()  # feasible: numbers, not "off"
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Save the proposed policy as the active policy").click()
    page.get_by_text("as the active policy: the review queue follows it now").wait_for()
    saved = _rows(data.settings.db_url, select(PolicyRecord.created_by, PolicyRecord.target_sensitivity,
                                                   PolicyRecord.t_low, PolicyRecord.active))
    assert [(s[0], s[1], s[3]) for s in saved] == [(ADMIN[0], 0.85, True)]
    page.goto(f"{url}/thresholds")  # a new visit opens on the saved policy
    page.get_by_text("Saved policy 1").wait_for()
    expect(page.get_by_label("Proposed t_low")).to_have_value(f"{saved[0][2]:.6f}")
    expect(page.get_by_label("Target sensitivity")).to_have_value("0.8500")
    expect(page.get_by_role("button", name="Save the proposed policy as the active policy")).to_be_disabled()
    page.locator(".js-plotly-plot").nth(2).wait_for()
    page.screenshot(path=str(shots / "thresholds.png"), full_page=True)

    page.get_by_role("link", name="Export").click()
    page.get_by_role("heading", name="Export").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "export.csv"
    download.value.save_as(path)
    exported = pd.read_csv(path)
    assert len(exported) == 220
    assert _rows(data.settings.db_url, select(AuditEvent.actor).where(AuditEvent.action == "export.download")) == [
        (ADMIN[0],)]


def test_reviewer_and_admin_in_a_real_browser(served, tmp_path):
    from playwright.sync_api import sync_playwright

    url, data = served
    shots = tmp_path / "screenshots"
    shots.mkdir()
    foreign: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.on("request", lambda request: foreign.append(request.url)
                if urlparse(request.url).hostname not in ("127.0.0.1", None) and
                not request.url.startswith(("data:", "blob:")) else None)
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("button", name="Log in").wait_for()
        _reviewer_checks(page, url, data, shots)
        _admin_checks(page, url, data, shots, tmp_path)
        browser.close()
    assert foreign == []  # works offline: no icon or font from another host
