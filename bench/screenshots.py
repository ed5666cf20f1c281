"""Screenshots of every page of the app for the docs, in a real headless Chromium at 1400x900.

    python -m bench.screenshots --out docs/screenshots                       # the tests' small data set
    stalltriage demo --no-app --data-dir /tmp/demo --profile tiny --n-train 200 --n-test 40
    python -m bench.screenshots --out docs/screenshots --demo-dir /tmp/demo  # a trained synthetic demo

Writes login, review (with the outline), review-model-view (Grad-CAM), dashboard, thresholds,
users and export PNGs to ``--out`` (the tests never write there). The reviewer answers a few
stacks first, so the Dashboard has something to show. Needs Chromium (``CHROMIUM``, default
/usr/bin/chromium) and the playwright package; run from the repository root.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from db.migrate import upgrade
from testkit.app_data import ADMIN, REVIEWER
from testkit.app_server import (CHROMIUM, LAUNCH_ARGS, STAGE, VIDEO, answer_key, answers_stored, log_in, prepare_app_data,
                                serve)
from triage_app.settings import Settings

def take(url: str, out: Path, reviewer: tuple[str, str], admin: tuple[str, str], answers: str) -> None:
    """Drive the app as a reviewer, then as an admin, saving one screenshot per page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.get_by_role("button", name="Log in").wait_for()
        page.screenshot(path=str(out / "login.png"))
        log_in(page, url, reviewer)
        for key in answers:
            answer_key(page, key)
        answers_stored(page)
        page.get_by_text("routed stacks still need reviews").wait_for()
        page.locator(VIDEO).evaluate("v => new Promise(r => { v.pause(); v.currentTime = v.duration / 2; "
                                                "v.addEventListener('seeked', r, {once: true}); })")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "review.png"))
        page.keyboard.press("m")
        page.locator(f"{STAGE}[data-view=model]").wait_for(timeout=120_000)
        page.get_by_role("button", name="Hide the model's view (M)").wait_for()  # the page has finished its run
        page.get_by_text("routed stacks still need reviews").wait_for()
        page.locator(VIDEO).evaluate("v => new Promise(r => { v.pause(); v.currentTime = v.duration / 2; "
                                                "v.addEventListener('seeked', r, {once: true}); })")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / "review-model-view.png"))
        page.get_by_role("button", name="Log out").click()
        log_in(page, url, admin)
        for name, link, height, charts in (("dashboard", "Dashboard", 2300, 4), ("thresholds", "Thresholds", 2700, 3),
                                           ("users", "Users", 1100, 0), ("export", "Export", 600, 0)):
            page.set_viewport_size({"width": 1400, "height": height})  # Streamlit scrolls inside the page
            page.get_by_role("link", name=link).click()
            page.get_by_role("heading", name=link).wait_for()
            page.wait_for_timeout(1000)
            page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
                                   arg=charts, timeout=120_000)
            page.wait_for_timeout(1500)  # charts finish drawing
            page.screenshot(path=str(out / f"{name}.png"))
        browser.close()


def main() -> int:
    """Parse the options, prepare or open the data, serve the app, take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNGs (e.g. docs/screenshots)")
    parser.add_argument("--demo-dir", type=Path, default=None,
                        help="a data dir prepared by `stalltriage demo --no-app` (default: the tests' small data set)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="stalltriage-shots-") as tmp:
        if args.demo_dir is None:
            url = f"sqlite:///{Path(tmp) / 'stalltriage.db'}"
            upgrade(url)
            settings, reviewer, admin = prepare_app_data(Path(tmp), url).settings, REVIEWER, ADMIN
        else:
            from triage_app.commands.demo import read_logins

            root = args.demo_dir.resolve()
            settings = Settings(data_dir=root, db_url=f"sqlite:///{root / 'stalltriage.db'}", store_path=root / "store")
            logins = read_logins(root / "demo-logins.txt")
            reviewer, admin = ("reviewer", logins["reviewer"]), ("admin", logins["admin"])
        with serve(settings, Path(tmp) / "app.log") as app_url:
            take(app_url, args.out, reviewer, admin, answers="sffus")
    print(f"wrote screenshots to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
