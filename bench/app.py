"""Review latency: from an answer key to the next stack's video being playable, at 100k vessels.

    python -m bench.app [--vessels 100000] [--reviews 40] [--think 2.0] [--db URL | --postgres]

Builds a database with ``--vessels`` stacks (200 labelled, enough in the review queue, the rest
scored far from the boundary), a real volume store and original videos, then measures two paths
side by side in one run, each over ``--reviews`` answers:

``browser``
    ``stalltriage app`` on a real port, driven by headless Chromium (Playwright): the reviewer
    watches each stack for ``--think`` seconds, presses a key, and the clock stops when the viewer
    shows another stack and its video on screen has ``readyState >= 2`` (a frame decoded): what
    a reviewer waits for. The same is timed inside the page, from the key event to the first
    animation frame that shows the next stack with a decoded frame (no Playwright round trip in
    it: the figure the reviewer sees). A third clock stops when the server has acknowledged the
    answer (stored in the background while the reviewer already watches the next stack).
``service``
    The server's work per answer without the browser: ``services.record_answers``, then
    ``services.review_items`` and ``services.media_for`` for the pair the viewer is sent (the
    current stack and the next), after the same think time.

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
from testkit.app_server import CHROMIUM, LAUNCH_ARGS, STAGE, answers_stored, free_port, shown_stack
from triage_app import services
from triage_app.commands import app

def service_path(settings, *, reviews: int, think: float) -> list[float]:  # noqa: ANN001 - Settings
    """Seconds from submit to the next stack's media in hand, through the services."""
    backend = services.open_backend(settings)
    try:
        with backend.factory.begin() as session:
            user = services.login_attempt(session, name=ADMIN[0], password=ADMIN[1]).user
        times = []
        items = services.review_items(backend, user)
        for item in items:
            services.media_for(backend, item)
        for _ in range(reviews):
            time.sleep(think)
            start = time.perf_counter()
            services.record_answers(backend, user, [services.Answer(items[0].vessel_id, "flowing", think)],
                                    offered=[item.vessel_id for item in items])
            items = services.review_items(backend, user)
            services.prefetch(backend, items)
            for item in items:
                services.media_for(backend, item)
            times.append(time.perf_counter() - start)
        return times
    finally:
        backend.close()


# The viewer (a components.v2 component) lives in a shadow root, out of document.querySelector's reach.
FIND_STAGE = f"""const find = (root) => {{
    const stage = root.querySelector('{STAGE}');
    if (stage) return stage;
    for (const e of root.querySelectorAll('*')) {{ const f = e.shadowRoot && find(e.shadowRoot); if (f) return f; }}
    return null;
}};"""


def browser_path(settings, *, reviews: int,  # noqa: ANN001 - Settings
                 think: float) -> dict[str, list[float]]:
    """Seconds from the key press to the next stack on screen, to its video showing a frame, and to the
    answer being acknowledged by the server (Playwright's clock, which includes its own round trips to
    the browser), and from the key event to the first animation frame with the next video playable
    (the page's clock)."""
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
            times: dict[str, list[float]] = {"shown": [], "playable": [], "stored": [], "in_page": []}
            for _ in range(reviews):
                time.sleep(think)
                name = shown_stack(page)
                page.evaluate(f"""(name) => {{
                    {FIND_STAGE}
                    document.activeElement && document.activeElement.blur();
                    window.__playableAfter = null;
                    window.addEventListener('keydown', (e) => {{
                        const keyAt = e.timeStamp;
                        const poll = (now) => {{  // each frame, in the page: no Playwright round trip counted
                            const stage = find(document);
                            const video = stage.querySelector('video.active');
                            if (stage.dataset.name !== name && stage.dataset.name !== ''
                                && video && video.readyState >= 2) {{
                                window.__playableAfter = performance.now() - keyAt;
                            }} else {{ requestAnimationFrame(poll); }}
                        }};
                        requestAnimationFrame(poll);
                    }}, {{ capture: true, once: true }});
                }}""", name)
                start = time.perf_counter()
                page.keyboard.press("f")
                page.wait_for_function(f"""(name) => {{
                        {FIND_STAGE}
                        const stage = find(document);
                        return stage.dataset.name !== name && stage.dataset.name !== '';
                    }}""", arg=name, polling="raf")
                times["shown"].append(time.perf_counter() - start)
                page.wait_for_function(f"""() => {{
                        {FIND_STAGE}
                        const video = find(document).querySelector('video.active');
                        return video && video.readyState >= 2;
                    }}""", polling="raf")
                times["playable"].append(time.perf_counter() - start)
                times["in_page"].append(page.wait_for_function("() => window.__playableAfter").json_value() / 1000)
                answers_stored(page)
                times["stored"].append(time.perf_counter() - start)
            browser.close()
        return times
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
    browser = browser_path(data.settings, reviews=args.reviews, think=args.think)
    service = service_path(data.settings, reviews=args.reviews, think=args.think)
    print(f"\n{args.vessels:,} vessels, think time {args.think} s, {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average at the start {load_before:.1f}, at the end {os.getloadavg()[0]:.1f}\n")
    print("| path | reviews | median ms | p95 ms | max ms |\n|---|---|---|---|---|")
    print(_row("browser: key press -> next stack on screen", browser["shown"]))
    print(_row("browser: key press -> next video playable", browser["playable"]))
    print(_row("in the page: key event -> frame with the next video playable", browser["in_page"]))
    print(_row("browser: key press -> answer stored (background)", browser["stored"]))
    print(_row("service: answer stored -> next pair's media ready", service))


if __name__ == "__main__":
    main()
