"""``stalltriage app``: serve the review app (Streamlit) on the configured database and store."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from triage_app.settings import (DATA_DIR_ENV, DB_ENV, STORE_ENV, VIDEO_DIRS_ENV, Settings, add_common_options, port,
                                  resolve)

ENTRY = Path(__file__).resolve().parents[1] / "server.py"  # the app plus the routes that set its cookie


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``app``."""
    parser = subparsers.add_parser("app", help="start the review app in the browser (Streamlit)",
                                   description="Serve the review, thresholds, dashboard, export and users pages.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8501, help="port (default 8501)")
    parser.add_argument("--video-dir", dest="video_dirs", action="append", type=Path, default=[], metavar="DIR",
                        help="folder holding the original mp4s, to show each stack's full frame (repeatable; "
                             "by default the app looks in <metadata folder>/<split>/)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def app_command(*, host: str, port: int) -> list[str]:
    """The Streamlit command line that serves the app."""
    return [sys.executable, "-m", "streamlit", "run", str(ENTRY), "--server.headless", "true",
            "--server.address", host, "--server.port", str(port), "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]


def app_environment(settings: Settings, video_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """The environment that hands the resolved settings to the app process."""
    env = dict(os.environ)
    env.update({DATA_DIR_ENV: str(Path(settings.data_dir).resolve()), DB_ENV: settings.db_url,
                STORE_ENV: str(Path(settings.store_path).resolve()),
                VIDEO_DIRS_ENV: os.pathsep.join(str(Path(d).resolve()) for d in video_dirs)})
    return env


def start(settings: Settings, *, host: str = "127.0.0.1", port: int = 8501,
          video_dirs: Sequence[Path] = ()) -> subprocess.Popen:
    """Start the app in a child process (the caller waits for or stops it)."""
    return subprocess.Popen(app_command(host=host, port=port), env=app_environment(settings, video_dirs))


def exec_app(settings: Settings, *, host: str = "127.0.0.1", port: int = 8501, video_dirs: Sequence[Path] = ()) -> None:
    """Replace this process with the app server (signals such as Ctrl+C or SIGTERM reach it directly)."""
    sys.stdout.flush()
    command = app_command(host=host, port=port)
    os.execve(command[0], command, app_environment(settings, video_dirs))


def run(args: argparse.Namespace) -> int:
    """Check the database, then become the app server; returns an exit code only on failure."""
    from sqlalchemy.engine import make_url

    from db.migrate import SchemaError
    from triage_app.database import command_session

    settings = resolve(args)
    shown = make_url(settings.db_url).render_as_string(hide_password=True)
    try:
        with command_session(settings.db_url):  # the schema check alone: the app opens its own engine
            pass
    except SchemaError as err:
        print(f"error: {err}")
        return 1
    print(f"StallTriage app: http://{args.host}:{args.port} (database {shown}; Ctrl+C stops it)")
    exec_app(settings, host=args.host, port=args.port, video_dirs=args.video_dirs)
    return 0  # not reached: exec_app replaces this process
