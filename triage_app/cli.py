"""The ``stalltriage`` command line: discovers the sub-commands in ``triage_app.commands``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from triage_app import commands


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command module registered, in workflow order.

    ``only`` names one sub-command module (e.g. ``"crowd_errors"``) to register alone: a command
    line that names its sub-command needs no other's parser, and importing every command module
    costs start-up time (some import pandas to build their parsers).
    """
    parser = argparse.ArgumentParser(prog="stalltriage", description="Find stalled brain capillaries: "
                                     "score stacks with a 3D-CNN ensemble, route uncertain ones to humans.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(subparsers, only=None if only is None else [only])
    return parser


def named_command(argv: list[str]) -> str | None:
    """The module of the sub-command that ``argv`` names (its first argument that is not an
    option; module names are command names with ``_`` for ``-``), or None if it names none."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    module = None if first is None or "_" in first else first.replace("-", "_")
    return module if module in commands.names() else None


def quiet_third_party_logs(verbose: bool) -> None:
    """Keep other libraries' chatter off the console unless ``-v``: the CLI says what went wrong itself.

    Alembic logs every migration step at INFO; OpenCV prints ``[ WARN:...]`` lines for files the
    command reports in its own words anyway (an empty mp4). OpenCV reads ``OPENCV_LOG_LEVEL`` when
    it is imported, here and in worker processes, so the variable is set before any import of it;
    an explicit setting in the environment wins.
    """
    os.environ.setdefault("OPENCV_LOG_LEVEL", "WARNING" if verbose else "ERROR")
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(named_command(argv)).parse_args(argv)
    args.argv = argv  # the command as given (model cards, audit)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party_logs(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
