"""Where StallTriage keeps its data and how the app is configured: one source for the data dir,
database URL, store path, video folders and the environment variables that carry them.

The Streamlit app runs in its own process and reads everything from the environment; the
command line resolves options, then environment, then defaults. Both read this module, so the
app never imports a command-line module.

The ``type=`` helpers at the end (:func:`probability`, :func:`share`, :func:`positive_int`,
:func:`count`, :func:`existing_dir`, :func:`existing_file`) validate option values while
argparse parses them, before any command opens a database, a run or a store: a bad value is an
argparse error (usage, one line naming the option, exit code 2) in every sub-command alike.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
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


def _checked(convert: Callable[[str], float], accept: Callable[[float], bool], wanted: str,
             name: str) -> Callable[[str], float]:
    """An argparse ``type=`` that converts with ``convert`` and refuses what ``accept`` rejects (or NaN).

    ``name`` becomes the function's name, which argparse shows for a value it cannot convert.
    """
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if math.isnan(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = f"argparse ``type=``: {wanted}."
    return parse


probability = _checked(float, lambda v: 0 < v < 1, "a number between 0 and 1 (exclusive)", "probability")
"""A target sensitivity or specificity, a confidence level: strictly between 0 and 1."""
share = _checked(float, lambda v: 0 <= v <= 1, "a number from 0 to 1", "share")
"""A fraction of stacks (a stall rate): from 0 to 1, both included."""
positive_int = _checked(int, lambda v: v >= 1, "a whole number >= 1", "positive_int")
"""Workers, batch sizes, epochs: at least 1."""
count = _checked(int, lambda v: v >= 0, "a whole number >= 0", "count")
"""How many of something, none allowed."""
positive_number = _checked(float, lambda v: 0 < v < math.inf, "a number > 0", "positive_number")
"""Minutes, frames per second: a finite number above 0."""
port = _checked(int, lambda v: 1 <= v <= 65535, "a port number from 1 to 65535", "port")
"""A TCP port to listen on."""


def existing_dir(text: str) -> Path:
    """argparse ``type=``: a folder that exists; says whether it is missing or something else."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path}: no such folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: not a folder")
    return path


def existing_file(text: str) -> Path:
    """argparse ``type=``: a file that exists; says whether it is missing or a folder."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: a folder, not a file")
    return path
