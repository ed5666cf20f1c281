"""The Review page without surprises, in a real headless Chromium: the model score is hidden again
for each new stack, "Reviewed this session" survives a reload, a reviewer who opens an admin
page's URL lands on Review with a message saying why, and the session cookie is HttpOnly (page
scripts cannot read it). Answer keys pressed faster than the page runs again swap to the preloaded
next stack at once and store each answer exactly once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.engine import make_engine
from db.models import Review, Stack, User
from testkit.app_data import REVIEWER
from testkit.app_server import CHROMIUM, LAUNCH_ARGS, STAGE, VIDEO, answers_stored, log_in, shown_stack
from triage_app.sessions import COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 30_000
SCORE = "Model probability (stalled)"


def _counter(page) -> str:  # noqa: ANN001 - a Playwright page
    """The value of the "Reviewed this session" metric."""
    metric = page.locator("[data-testid=stMetric]").filter(has_text="Reviewed this session")
    return metric.locator("[data-testid=stMetricValue]").inner_text().strip()


def _answer(page, button: str) -> None:  # noqa: ANN001 - a Playwright page
    """Click an answer and wait until the next stack is shown and the answer stored."""
    shown = shown_stack(page)
    page.get_by_role("button", name=button).click()
    page.locator(f"{STAGE}:not([data-name='{shown}'])").wait_for()
    answers_stored(page)


def _reviews(url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(Stack.filename, User.name, Review.answer)
                                  .join(Stack, Stack.id == Review.vessel_id).join(User, User.id == Review.user_id)
                                  .order_by(Review.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_score_reset_counter_after_reload_and_an_admin_url(served):
    from playwright.sync_api import expect, sync_playwright

    url, _ = served
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        log_in(page, url, REVIEWER)
        expect(page.get_by_text(SCORE)).to_have_count(0)
        page.get_by_text("Show model score").click()
        expect(page.get_by_text(SCORE)).to_be_visible()
        _answer(page, "Flowing (F)")
        expect(page.get_by_text(SCORE)).to_have_count(0)  # the next stack starts with the score hidden
        expect(page.get_by_role("switch", name="Show model score")).not_to_be_checked()

        _answer(page, "Stalled (S)")
        expect(page.locator("[data-testid=stMetric]").filter(has_text="Reviewed this session")
               .locator("[data-testid=stMetricValue]")).to_have_text("2")
        cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert COOKIE not in page.evaluate("document.cookie")
        page.reload()
        page.get_by_role("heading", name="Review").wait_for()
        assert _counter(page) == "2"  # counted from the database since the session began

        page.goto(f"{url}/thresholds")
        expect(page.get_by_text("Thresholds is a page for admins; you are logged in as a reviewer.")).to_be_visible()
        page.get_by_role("heading", name="Review").wait_for()
        assert not page.url.rstrip("/").endswith("/thresholds")
        browser.close()


def test_answer_keys_faster_than_the_page_store_each_answer_once(served):
    from playwright.sync_api import sync_playwright

    url, data = served
    keys = {"s": "stalled", "f": "flowing", "u": "unsure", "b": "bad_stack"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        log_in(page, url, REVIEWER)
        first = shown_stack(page)
        page.locator(f"{STAGE} .layer:not(.active) video").evaluate(  # the next stack is loaded and decoded
            "v => new Promise(r => { const ok = () => v.readyState >= 2 ? r() : setTimeout(ok, 20); ok(); })")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("s")
        # at once, with no server round trip: the preloaded stack is on screen, its video has a frame
        assert page.locator(STAGE).get_attribute("data-name") not in ("", first)
        assert page.locator(VIDEO).evaluate("v => v.readyState") >= 2
        expected = [(first, REVIEWER[0], "stalled")]
        for key in "fubsfs":  # each key as soon as a stack is on screen, never waiting for a stored answer
            shown = shown_stack(page)
            page.keyboard.press(key)
            expected.append((shown, REVIEWER[0], keys[key]))
        answers_stored(page)
        assert int(page.locator(STAGE).get_attribute("data-most-pending")) >= 2  # faster than the page
        assert _reviews(data.settings.db_url) == expected  # none lost, none doubled, in order
        assert len({name for name, _, _ in expected}) == len(expected)
        page.reload()  # nothing answered comes back
        assert shown_stack(page) not in {name for name, _, _ in expected}
        assert _reviews(data.settings.db_url) == expected
        browser.close()
