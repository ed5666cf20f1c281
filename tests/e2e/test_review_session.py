"""The Review page without surprises, in a real headless Chromium: the model score is hidden again
for each new stack, "Reviewed this session" survives a reload, a reviewer who opens an admin
page's URL lands on Review with a message saying why, and the session cookie is HttpOnly (page
scripts cannot read it)."""

from __future__ import annotations

import pytest

from testkit.app_data import REVIEWER
from testkit.app_server import CHROMIUM, LAUNCH_ARGS, log_in
from triage_app.sessions import COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 30_000
SCORE = "Model probability (stalled)"


def _counter(page) -> str:  # noqa: ANN001 - a Playwright page
    """The value of the "Reviewed this session" metric."""
    metric = page.locator("[data-testid=stMetric]").filter(has_text="Reviewed this session")
    return metric.locator("[data-testid=stMetricValue]").inner_text().strip()


def _answer(page, button: str) -> None:  # noqa: ANN001 - a Playwright page
    """Click an answer and wait until the next stack is shown."""
    caption = page.get_by_text("full frame, the ROI boxed in cyan").first
    shown = caption.inner_text().split(":")[0].strip()
    page.get_by_role("button", name=button).click()
    page.wait_for_function("(name) => ![...document.querySelectorAll('[data-testid=stImageCaption]')]"
                           ".some(e => e.innerText.startsWith(name + ':'))", arg=shown)


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
