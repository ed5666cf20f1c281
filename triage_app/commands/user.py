"""``stalltriage user add|list|passwd|role|deactivate``: manage who can log in to the app.

A password never comes from the command line (it would sit in the process list and the shell
history): it is read from a file (``--password-file``), from the environment variable
``STALLTRIAGE_PASSWORD``, or asked for twice at a prompt that does not echo it.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from triage_app.settings import PASSWORD_ENV, add_common_options, resolve


class _RefusePassword(argparse.Action):
    """``--password X`` stops with a pointer to the safe ways (X is never echoed)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.error(f"a password is never taken on the command line (the process list and the shell "
                     f"history would keep it): use --password-file FILE, the {PASSWORD_ENV} environment "
                     "variable, or the prompt")


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
        action.add_argument("--password-file", type=Path, default=None, metavar="FILE",
                            help=f"read the password from FILE's first line (default: env {PASSWORD_ENV}, "
                                 "else asked for twice)")
        action.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)
    role = actions.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=("reviewer", "admin"))
    deactivate = actions.add_parser("deactivate", help="stop a user from logging in (reviews are kept)")
    deactivate.add_argument("name")
    listing = actions.add_parser("list", help="list users")
    for action in (add, passwd, role, deactivate, listing):
        add_common_options(action)
        action.set_defaults(func=run)


class PasswordError(ValueError):
    """No usable password was given; the message says why."""


def read_password(name: str, password_file: Path | None) -> str:
    """The password for user ``name``: from ``password_file``, else the environment, else a prompt.

    The file's first line is the password (its line ending dropped). The prompt asks twice and
    does not echo.

    Raises
    ------
    PasswordError
        The file cannot be read or is empty, or the two prompted entries differ.
    """
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise PasswordError(f"{password_file}: cannot read the password file: {err}") from err
        if not lines or not lines[0]:
            raise PasswordError(f"{password_file}: the first line (the password) is empty")
        return lines[0]
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise PasswordError("the two passwords differ; nothing changed")
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
                password = read_password(args.name, args.password_file)
                users.add_user(session, name=args.name, password=password, role=args.role, actor="cli")
                print(f"added {args.role} {args.name}")
                return 0
            user = users.get_user(session, name=args.name)
            if args.user_action == "passwd":
                users.set_password(session, user_id=user.id, password=read_password(args.name, args.password_file),
                                   actor="cli")
            elif args.user_action == "role":
                users.set_role(session, user_id=user.id, role=args.role, actor="cli")
            else:
                users.deactivate_user(session, user_id=user.id, actor="cli")
            print(f"{args.user_action}: {args.name} done")
            return 0
    except (PasswordError, SchemaError, DatabaseInputError) as error:
        print(f"error: {error}")
        return 1
