"""One module per `stalltriage` sub-command.

Each module defines ``add_parser(subparsers)``, which registers the sub-command and sets
``func`` to a callable ``(args) -> int`` (the exit code). Heavy imports belong inside that
callable so that ``stalltriage --help`` stays fast. A new module is found by itself; it is
listed after the :data:`WORKFLOW` ones until it is given a place there.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Iterable

#: The order of a lab's work, which is the order ``stalltriage --help`` lists the commands in.
WORKFLOW = ("synth", "db", "ingest", "train", "predict", "tune", "user", "app", "retrain", "export", "explain", "demo")


def names() -> list[str]:
    """Every sub-command module's name: the workflow ones in order, then any others alphabetically."""
    found = {info.name for info in pkgutil.iter_modules(__path__)}
    return [name for name in WORKFLOW if name in found] + sorted(found - set(WORKFLOW))


def register(subparsers: argparse._SubParsersAction, only: Iterable[str] | None = None) -> None:
    """Add the sub-commands' parsers (all of them, or those in ``only``) in workflow order."""
    wanted = names() if only is None else [name for name in names() if name in set(only)]
    for name in wanted:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
