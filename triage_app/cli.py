"""The ``stalltriage`` command line: discovers the sub-commands in ``triage_app.commands``."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from triage_app import commands


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every sub-command module registered, in workflow order."""
    parser = argparse.ArgumentParser(prog="stalltriage", description="Find stalled brain capillaries: "
                                     "score stacks with a 3D-CNN ensemble, route uncertain ones to humans.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(subparsers)
    return parser


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
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as given (model cards, audit)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party_logs(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
