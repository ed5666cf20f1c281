"""Where StallTriage keeps its data and how the app is configured: one source for the data dir,
database URL, store path, video folders and the environment variables that carry them.

The Streamlit app runs in its own process and reads everything from the environment; the
command line resolves options, then environment, then defaults. Both read this module, so the
app never imports a command-line module.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "STALLTRIAGE_DATA_DIR"
DB_ENV = "STALLTRIAGE_DB"
STORE_ENV = "STALLTRIAGE_STORE"
VIDEO_DIRS_ENV = "STALLTRIAGE_VIDEO_DIRS"
PASSWORD_ENV = "STALLTRIAGE_PASSWORD"
DEFAULT_DATA_DIR = "stalltriage-data"


@dataclass(frozen=True)
class Settings:
    """Resolved locations: command-line option, else environment variable, else data-dir default."""

    data_dir: Path
    db_url: str
    store_path: Path


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir``, ``--db`` and ``--store`` to a sub-command's parser."""
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"where the database and store live (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR})")
    parser.add_argument("--db", dest="db_url", default=None,
                        help=f"SQLAlchemy database URL (env {DB_ENV}; default: SQLite file in the data dir)")
    parser.add_argument("--store", dest="store_path", type=Path, default=None,
                        help=f"LMDB volume store directory (env {STORE_ENV}; default: store/ in the data dir)")


def resolve(args: argparse.Namespace | None = None) -> Settings:
    """Resolve the settings from parsed options (if any) and the environment."""
    data_dir = getattr(args, "data_dir", None) or Path(os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR))
    db_url = getattr(args, "db_url", None) or os.environ.get(DB_ENV) or f"sqlite:///{(Path(data_dir) / 'stalltriage.db').resolve()}"
    store_path = getattr(args, "store_path", None) or Path(os.environ.get(STORE_ENV, Path(data_dir) / "store"))
    return Settings(data_dir=Path(data_dir), db_url=db_url, store_path=Path(store_path))


def video_dirs() -> tuple[str, ...]:
    """The folders holding the original mp4s, from ``STALLTRIAGE_VIDEO_DIRS`` (``os.pathsep``-separated)."""
    return tuple(d for d in os.environ.get(VIDEO_DIRS_ENV, "").split(os.pathsep) if d)
