"""Review latency: from submitting an answer to the next stack's video being ready, at 100k vessels.

    python -m bench.app [--vessels 100000] [--reviews 40] [--think 2.0] [--db URL | --postgres]

Builds a database with ``--vessels`` stacks (200 labelled, enough in the review queue, the rest
scored far from the boundary), a real volume store and original videos, then measures two paths
side by side in one run, each over ``--reviews`` answers:

``browser``
    ``stalltriage app`` on a real port, driven by headless Chromium (Playwright): the reviewer
    watches each stack for ``--think`` seconds, presses a key, and the clock stops when the next
    stack's caption is on screen and its new video element has ``readyState >= 2`` (a frame
    decoded). This is what a reviewer waits for.
``service``
    The same work without the browser: ``services.submit_review`` then ``services.review_items``,
    ``services.media_for`` for the next stack and ``services.prefetch`` for the one after
    (database + prepared media), after the same think time.

Prints a Markdown table (median, p95, max in ms). The database is a new SQLite file unless
``--db`` names an empty database (migrated here) or ``--postgres`` asks for a throwaway
PostgreSQL 15 server (started as in the tests, removed at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url

from db.engine import open_engine
from db.migrate import upgrade
from testkit.app_data import ADMIN, REVIEWER, build_app_data
from testkit.app_server import CHROMIUM, LAUNCH_ARGS, STAGE, free_port
from triage_app import services
from triage_app.commands import app

def service_path(settings, *, reviews: int, think: float) -> list[float]:  # noqa: ANN001 - Settings
    """Seconds from submit to the next stack's media in hand, through the services."""
    backend = services.open_backend(settings)
    try:
        with backend.factory.begin() as session:
            user = services.login(session, name=ADMIN[0], password=ADMIN[1])
        times = []
        items = services.review_items(backend, user)
        services.media_for(backend, items[0])
        services.prefetch(backend, items[1:])
        for _ in range(reviews):
            time.sleep(think)
            start = time.perf_counter()
            services.submit_review(backend, user, items[0], answer="flowing", seconds=think)
            items = services.review_items(backend, user)
            services.media_for(backend, items[0])
            services.prefetch(backend, items[1:])
            times.append(time.perf_counter() - start)
        return times
    finally:
        backend.close()


# The viewer (a components.v2 component) lives in a shadow root, out of document.querySelector's reach.
FIND_VIDEO = """const find = (root) => {
    const v = root.querySelector('video');
    if (v) return v;
    for (const e of root.querySelectorAll('*')) { const f = e.shadowRoot && find(e.shadowRoot); if (f) return f; }
    return null;
};"""


def browser_path(settings, *, reviews: int, think: float) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """Seconds from the key press to the next stack on screen, and to its video showing a frame."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    process = app.start(settings, port=port)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_label("User name").fill(REVIEWER[0])
            page.get_by_role("textbox", name="Password").fill(REVIEWER[1])
            page.get_by_role("button", name="Log in").click()
            page.locator(f"{STAGE} video").wait_for()
            shown, playable = [], []
            for _ in range(reviews):
                time.sleep(think)
                caption = page.get_by_text("full frame, the ROI boxed in cyan").first.inner_text().split(":")[0]
                src = page.locator(f"{STAGE} video").get_attribute("src")
                page.evaluate("document.activeElement && document.activeElement.blur()")
                start = time.perf_counter()
                page.keyboard.press("f")
                page.wait_for_function(
                    """(name) => {
                        const captions = [...document.querySelectorAll('[data-testid=stImageCaption]')];
                        return captions.length > 0 && !captions.some(e => e.innerText.startsWith(name + ':'));
                    }""", arg=caption, polling="raf")
                shown.append(time.perf_counter() - start)
                page.wait_for_function(f"""(src) => {{
                        {FIND_VIDEO}
                        const v = find(document);
                        return v && v.getAttribute('src') !== src && v.readyState >= 2;
                    }}""", arg=src, polling="raf")
                playable.append(time.perf_counter() - start)
            browser.close()
        return shown, playable
    finally:
        process.terminate()
        process.wait(timeout=20)


def _row(name: str, times: list[float]) -> str:
    ms = np.array(times) * 1000
    return (f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {np.percentile(ms, 95):.0f} | {ms.max():.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vessels", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=40)
    parser.add_argument("--think", type=float, default=2.0, help="seconds a reviewer watches each stack")
    parser.add_argument("--db", default=None, help="an empty database URL (default: a new SQLite file)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL server instead")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="stalltriage-bench-app-"))
    server = None
    if args.postgres:
        from testkit.postgres import PostgresServer

        server = PostgresServer().start()
        server.execute("CREATE DATABASE bench")
        args.db = server.database_url("bench")
    try:
        _run(args, root, args.db or f"sqlite:///{root / 'bench.db'}")
    finally:
        if server is not None:
            server.stop()


def _run(args: argparse.Namespace, root: Path, url: str) -> None:
    with open_engine(url) as engine:
        upgrade(engine)
    n_queue = 2 * args.reviews + 20
    start = time.perf_counter()
    data = build_app_data(root, url, n_labelled=200, n_queue=n_queue, n_background=args.vessels - 200 - n_queue)
    print(f"built {args.vessels:,} vessels in {time.perf_counter() - start:.0f} s ({make_url(url).get_backend_name()})",
          flush=True)
    load_before = os.getloadavg()[0]
    shown, playable = browser_path(data.settings, reviews=args.reviews, think=args.think)
    service = service_path(data.settings, reviews=args.reviews, think=args.think)
    print(f"\n{args.vessels:,} vessels, think time {args.think} s, {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average at the start {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}\n")
    print("| path | reviews | median ms | p95 ms | max ms |\n|---|---|---|---|---|")
    print(_row("browser: key press -> next stack on screen", shown))
    print(_row("browser: key press -> next video playable", playable))
    print(_row("service: submit -> next media ready", service))


if __name__ == "__main__":
    main()
