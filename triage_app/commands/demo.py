"""``stalltriage demo``: the whole chain on synthetic data, then the app.

synth → db upgrade → ingest → train (a few CPU minutes) → predict → tune → demo users → app.
Each step runs the real sub-command in this process (parsed by the same parser), so the demo
exercises exactly what a lab would run. A rerun reuses what is there: the synthetic files, the
ingested stacks, the training checkpoints and the users.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from triage_app.settings import Settings, add_common_options, resolve

DEMO_USERS = (("admin", "admin-demo-pw", "admin"), ("reviewer", "reviewer-demo-pw", "reviewer"))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    parser = subparsers.add_parser(
        "demo", help="synthetic data -> ingest -> train -> predict -> tune -> the app, in one go",
        description="Run the whole StallTriage chain on synthetic data (under 15 minutes on 2 CPU cores), "
                    "then serve the app and print the demo logins.")
    parser.add_argument("--n-train", type=int, default=400, help="synthetic training stacks (default 400)")
    parser.add_argument("--n-test", type=int, default=100, help="synthetic test stacks to review (default 100)")
    parser.add_argument("--time-budget", type=float, default=4.0, metavar="MIN",
                        help="training time budget in minutes (default 4)")
    parser.add_argument("--profile", choices=("realistic", "tiny"), default="realistic",
                        help="synthetic stack sizes (tiny: small and fast, for tests)")
    parser.add_argument("--sensitivity", type=float, default=0.95,
                        help="tuning target (default 0.95: a few hundred demo stalls cannot prove 0.99)")
    parser.add_argument("--specificity", type=float, default=0.9, help="tuning target (default 0.9)")
    parser.add_argument("--confidence", type=float, default=0.8, help="confidence of the bounds (default 0.8)")
    parser.add_argument("--no-app", action="store_true", help="stop after preparing everything")
    parser.add_argument("--host", default="127.0.0.1", help="app address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="app port (default 8501)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _step(title: str, argv: list[str]) -> int:
    """Run one sub-command in-process, exactly as ``stalltriage ARGV`` would; its exit code."""
    from triage_app.cli import build_parser

    print(f"\n== {title}: stalltriage {' '.join(argv)}", flush=True)
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    args.argv = argv
    code = int(args.func(args) or 0)
    print(f"== {title}: {'done' if code == 0 else f'exit code {code}'} in {time.monotonic() - started:.0f} s",
          flush=True)
    return code


def _common(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--db", settings.db_url, "--store", str(settings.store_path)]


def prepare(args: argparse.Namespace, settings: Settings) -> int:
    """Every step before the app; 0 when the app has something to serve."""
    synth = Path(settings.data_dir) / "synth"
    common = _common(settings)
    steps: list[tuple[str, list[str]]] = []
    if not (synth / "test_metadata.csv").exists():
        steps.append(("synthetic data", ["synth", str(synth), "--n-train", str(args.n_train), "--n-test",
                                         str(args.n_test), "--profile", args.profile]))
    steps += [
        ("database", ["db", "upgrade", *common]),
        ("ingest training stacks", ["ingest", str(synth / "train"), "--metadata", str(synth / "train_metadata.csv"),
                                    "--labels", str(synth / "train_labels.csv"), *common]),
        ("ingest test stacks", ["ingest", str(synth / "test"), "--metadata", str(synth / "test_metadata.csv"),
                                *common]),
        ("train", ["train", "--out", str(Path(settings.data_dir) / "run"), "--time-budget", str(args.time_budget),
                   *common]),
        ("predict", ["predict", "--model", str(Path(settings.data_dir) / "run"), "--split", "all", *common]),
    ]
    for title, argv in steps:
        if _step(title, argv) != 0:
            print(f"demo stopped: the {title} step failed")
            return 1
    if _step("tune", ["tune", "--sensitivity", str(args.sensitivity), "--specificity", str(args.specificity),
                      "--confidence", str(args.confidence), *common]) != 0:
        print("no policy saved: the review queue serves every test stack (tune again with lower targets)")
    for name, password, role in DEMO_USERS:
        if _user_exists(settings, name):
            continue
        if _step(f"user {name}", ["user", "add", name, "--role", role, "--password", password, *common]) != 0:
            return 1
    return 0


def _user_exists(settings: Settings, name: str) -> bool:
    from db import users
    from db.engine import make_engine, make_session_factory
    from db.errors import UnknownUserError

    engine = make_engine(settings.db_url)
    try:
        with make_session_factory(engine)() as session:
            users.get_user(session, name=name)
            return True
    except UnknownUserError:
        return False
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    """Prepare the demo, print the logins and serve the app (unless ``--no-app``)."""
    from triage_app.commands import app

    settings = resolve(args)
    started = time.monotonic()
    code = prepare(args, settings)
    if code:
        return code
    print(f"\ndemo ready in {(time.monotonic() - started) / 60:.1f} min; data in {settings.data_dir}")
    print("logins:  " + "   ".join(f"{name} / {password} ({role})" for name, password, role in DEMO_USERS))
    if args.no_app:
        print(f"start the app with: stalltriage app {' '.join(_common(settings))}")
        return 0
    print(f"the app: http://{args.host}:{args.port}  (Ctrl+C stops it)", flush=True)
    app.exec_app(settings, host=args.host, port=args.port)
    return 0  # not reached: exec_app replaces this process
