"""One module per `stalltriage` sub-command.

Each module defines ``add_parser(subparsers)``, which registers the sub-command and sets
``func`` to a callable ``(args) -> int`` (the exit code). Heavy imports belong inside that
callable so that ``stalltriage --help`` stays fast.
"""
