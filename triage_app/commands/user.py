"""``stalltriage user add|list|passwd|role|deactivate``: manage who can log in to the app."""

from __future__ import annotations

import argparse
import getpass
import os

from triage_app.settings import add_common_options, resolve

PASSWORD_ENV = "STALLTRIAGE_PASSWORD"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``user`` and its actions."""
    parser = subparsers.add_parser("user", help="manage reviewers and admins")
    actions = parser.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--role", choices=("reviewer", "admin"), default="reviewer")
    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    for action in (add, passwd):
        action.add_argument("--password", default=None,
                            help=f"the password (default: env {PASSWORD_ENV}, else asked for)")
    role = actions.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=("reviewer", "admin"))
    deactivate = actions.add_parser("deactivate", help="stop a user from logging in (reviews are kept)")
    deactivate.add_argument("name")
    listing = actions.add_parser("list", help="list users")
    for action in (add, passwd, role, deactivate, listing):
        add_common_options(action)
        action.set_defaults(func=run)


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("passwords differ; nothing changed")
    return first


def run(args: argparse.Namespace) -> int:
    """Apply the chosen action in one transaction; returns the exit code."""
    from db import users
    from db.errors import DatabaseInputError
    from db.migrate import SchemaError
    from triage_app.database import command_session

    try:
        with command_session(resolve(args).db_url, write=True) as session:
            if args.user_action == "list":
                for user in users.list_users(session, include_inactive=True):
                    print(f"{user.name}\t{user.role}\t{'active' if user.active else 'inactive'}")
                return 0
            if args.user_action == "add":
                users.add_user(session, name=args.name, password=_password(args), role=args.role, actor="cli")
                print(f"added {args.role} {args.name}")
                return 0
            user = users.get_user(session, name=args.name)
            if args.user_action == "passwd":
                users.set_password(session, user_id=user.id, password=_password(args), actor="cli")
            elif args.user_action == "role":
                users.set_role(session, user_id=user.id, role=args.role, actor="cli")
            else:
                users.deactivate_user(session, user_id=user.id, actor="cli")
            print(f"{args.user_action}: {args.name} done")
            return 0
    except (SchemaError, DatabaseInputError) as error:
        print(f"error: {error}")
        return 1
