"""``stalltriage export --out FILE``: final labels with provenance, or a competition submission."""

from __future__ import annotations

import argparse
from pathlib import Path

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export``."""
    parser = subparsers.add_parser("export", help="write the final labels (human, crowd, model) to CSV or Parquet")
    parser.add_argument("--out", type=Path, required=True, help="output file, .csv or .parquet")
    parser.add_argument("--format", dest="fmt", choices=("labels", "submission"), default="labels",
                        help="labels: every stack with source and reason (default); "
                             "submission: the competition's filename,stalled for the test stacks")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the export; returns 1 when the file could not be written or a submission is incomplete."""
    from db.export import write_export
    from db.migrate import SchemaError
    from triage_app.database import command_session

    if args.out.suffix.lower() not in (".csv", ".parquet"):
        print(f"error: {args.out}: the output file must end in .csv or .parquet")
        return 1
    try:
        with command_session(resolve(args).db_url) as session:
            summary = write_export(session, path=args.out, fmt=args.fmt)
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    except OSError as error:
        print(f"error: {args.out}: {error.strerror or error}")
        return 1
    sources = ", ".join(f"{count} {source}" for source, count in sorted(summary.by_source.items()))
    print(f"wrote {summary.rows} rows to {args.out} (final labels by source: {sources or 'no stacks'})")
    if summary.skill_weighted:
        print(f"{summary.skill_weighted} human labels from a skill-weighted vote of several reviews "
              "(column human_p_stalled)")
    for filename in summary.left_out[:20]:
        print(f"left out of the submission: {filename}: no final label and no prediction")
    if summary.left_out:
        print(f"{len(summary.left_out)} test stacks left out of the submission")
        return 1
    return 0
