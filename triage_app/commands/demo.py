"""``stalltriage demo``: the whole chain on synthetic data, then the app.

synth → db upgrade → ingest → train (a few CPU minutes) → predict → tune → demo users → app.
Each step up to ``tune`` runs the real sub-command in this process (parsed by the sub-command's own
parser), so the demo exercises exactly what a lab would run; the demo users are added through
``db.users`` on one engine whose schema is checked first. A rerun reuses what is there: the
synthetic files, the ingested stacks, the training checkpoints and the users.

The demo users' passwords are never fixed in the code: each comes from its environment variable
(``STALLTRIAGE_DEMO_ADMIN_PASSWORD``, ``STALLTRIAGE_DEMO_REVIEWER_PASSWORD``) or is generated,
and they are written to ``DATA_DIR/demo-logins.txt``, readable by its owner only (mode 0600);
the console says where that file is, not what it holds.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

from triage_app.settings import Settings, add_common_options, probability, resolve

DEMO_USERS = (("admin", "admin"), ("reviewer", "reviewer"))
LOGINS_FILE = "demo-logins.txt"
_LOGINS_HEADER = "# StallTriage demo logins: user, role, password (tab-separated). Keep this file private.\n"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    parser = subparsers.add_parser(
        "demo", help="synthetic data -> ingest -> train -> predict -> tune -> the app, in one go",
        description="""Run the whole StallTriage chain on synthetic data (under 15 minutes on 2 CPU cores), then serve
                    the app and print the demo logins.""")
    parser.add_argument("--n-train", type=int, default=400, help="synthetic training stacks (default 400)")
    parser.add_argument("--n-test", type=int, default=100, help="synthetic test stacks to review (default 100)")
    parser.add_argument("--time-budget", type=float, default=4.0, metavar="MIN",
                        help="training time budget in minutes (default 4)")
    parser.add_argument("--profile", choices=("realistic", "tiny"), default="realistic",
                        help="synthetic stack sizes (tiny: small and fast, for tests)")
    parser.add_argument("--sensitivity", type=probability, default=0.95,
                        help="tuning target of the relative promise (default 0.95: a few hundred demo stalls "
                             "cannot prove 0.99)")
    parser.add_argument("--specificity", type=probability, default=0.9, help="tuning target (default 0.9)")
    parser.add_argument("--confidence", type=probability, default=0.8,
                        help="confidence of both bounds together (default 0.8)")
    parser.add_argument("--no-app", action="store_true", help="stop after preparing everything")
    parser.add_argument("--host", default="127.0.0.1", help="app address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="app port (default 8501)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _step(title: str, argv: list[str]) -> int:
    """Run one sub-command in-process, exactly as ``stalltriage ARGV`` would; its exit code."""
    from triage_app import commands

    print(f"\n== {title}: stalltriage {' '.join(argv)}", flush=True)
    started = time.monotonic()
    parser = argparse.ArgumentParser(prog="stalltriage")
    commands.register(parser.add_subparsers(dest="command", required=True), only=[argv[0]])
    args = parser.parse_args(argv)
    args.argv = argv
    code = int(args.func(args) or 0)
    print(f"== {title}: {'done' if code == 0 else f'exit code {code}'} in {time.monotonic() - started:.0f} s",
          flush=True)
    return code


def _common(settings: Settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--db", settings.db_url, "--store", str(settings.store_path)]


# Few enough projects that each holds the answers its validation gate needs (core.policy.gate.MIN_ANSWERS of each
# class): with synth's 12, 400 training stacks give 5-17 stalls per project and the gate decided 0-17 %.
DEMO_PROJECTS = 3


def prepare_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Every step before the app; 0 when the app has something to serve."""
    synth = Path(settings.data_dir) / "synth"
    common = _common(settings)
    steps: list[tuple[str, list[str]]] = []
    if not (synth / "test_metadata.csv").exists():
        steps.append(("synthetic data", ["synth", str(synth), "--n-train", str(args.n_train), "--n-test",
                                         str(args.n_test), "--profile", args.profile, "--projects", str(DEMO_PROJECTS)]))
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
        print("no policy saved: the review queue serves every test stack (see the frontier above; "
              "`stalltriage tune --accept-shortfall` saves the closest policy)")
    return add_demo_users(settings)


def password_variable(name: str) -> str:
    """The environment variable that can set demo user ``name``'s password."""
    return f"STALLTRIAGE_DEMO_{name.upper()}_PASSWORD"


def read_logins(path: Path) -> dict[str, str]:
    """User name → password from a logins file of an earlier run (empty if there is none)."""
    if not path.is_file():
        return {}
    rows = (line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line and line[0] != "#")
    return {row[0]: row[2] for row in rows if len(row) == 3}


def write_logins(path: Path, logins: list[tuple[str, str, str]]) -> None:
    """Write ``(user, role, password)`` rows to ``path``, readable and writable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an earlier run keeps its mode through os.open
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(_LOGINS_HEADER + "".join(f"{name}\t{role}\t{password}\n" for name, role, password in logins))


def add_demo_users(settings: Settings) -> int:
    """Create the demo users that do not exist yet (``db.users.add_user``, on one engine whose schema
    is checked first); the exit code.

    Their passwords are written to the logins file before any user is created, so no password
    set in the database is ever missing from the file.
    """
    from db import users
    from db.errors import DatabaseInputError
    from db.migrate import SchemaError
    from triage_app.database import command_sessions

    path = Path(settings.data_dir) / LOGINS_FILE
    known = read_logins(path)
    try:
        with command_sessions(settings.db_url) as factory:
            with factory() as session:
                active = {user.name for user in users.list_users(session)}
            missing = [(name, role) for name, role in DEMO_USERS if name not in active]
            passwords = {name: os.environ.get(password_variable(name)) or known.get(name) or secrets.token_urlsafe(12)
                         for name, _ in missing}
            rows = [(name, role, passwords.get(name, known.get(name))) for name, role in DEMO_USERS]
            write_logins(path, [row for row in rows if row[2] is not None])
            for name, role in missing:
                with factory.begin() as session:
                    users.add_user(session, name=name, password=passwords[name], role=role, actor="cli")
                print(f"== user {name}: added as {role}", flush=True)
    except (SchemaError, DatabaseInputError) as error:
        print(f"error: {error}")
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Prepare the demo, print the logins and serve the app (unless ``--no-app``)."""
    from triage_app.commands import app

    settings = resolve(args)
    started = time.monotonic()
    code = prepare_demo(args, settings)
    if code:
        return code
    print(f"\ndemo ready in {(time.monotonic() - started) / 60:.1f} min; data in {settings.data_dir}")
    logins = Path(settings.data_dir) / LOGINS_FILE
    unknown = [name for name, _ in DEMO_USERS if name not in read_logins(logins)]
    print(f"logins: {', '.join(f'{name} ({role})' for name, role in DEMO_USERS)}; "
          f"passwords in {logins.resolve()} (readable by you only)")
    if unknown:
        print(f"not in that file (set before this run): {', '.join(unknown)}; "
              "change with `stalltriage user passwd NAME`")
    if args.no_app:
        print(f"start the app with: stalltriage app {' '.join(_common(settings))}")
        return 0
    print(f"the app: http://{args.host}:{args.port}  (Ctrl+C stops it)", flush=True)
    app.exec_app(settings, host=args.host, port=args.port)
    return 0  # not reached: exec_app replaces this process
