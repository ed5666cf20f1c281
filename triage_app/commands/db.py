"""``stalltriage db upgrade|downgrade|current``: manage the database schema (Alembic migrations)."""

from __future__ import annotations

import argparse

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``db`` and its actions."""
    parser = subparsers.add_parser("db", help="create or migrate the database schema")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate to the newest schema (creates the tables)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    downgrade = actions.add_parser("downgrade", help="migrate back to REVISION ('base' drops every table)")
    downgrade.add_argument("revision")
    current = actions.add_parser("current", help="print the schema revision of the database")
    for action in (upgrade, downgrade, current):
        add_common_options(action)
        action.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen migration action; returns the exit code."""
    from db import migrate
    from db.engine import open_engine

    from alembic.util import CommandError

    url = resolve(args).db_url
    with open_engine(url) as engine:
        if args.db_action in ("upgrade", "downgrade"):
            current = migrate.current_revision(engine)
            if current is not None and not migrate.is_known_revision(current):
                print(f"error: {_safe(url)}: {migrate.schema_advice(current)}; nothing changed")
                return 1
            try:
                getattr(migrate, args.db_action)(engine, args.revision)
            except CommandError as err:  # e.g. a target revision that does not exist
                print(f"error: {_safe(url)}: {err}; nothing changed")
                return 1
        revision = migrate.current_revision(engine)
    print(f"database {_safe(url)} at revision {revision or 'base (empty)'}")
    return 0


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
