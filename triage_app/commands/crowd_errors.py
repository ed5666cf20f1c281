"""``stalltriage crowd-errors``: the labelled stacks whose crowd answer the model confidently doubts."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.labels.crowd_errors import FILTERS
from triage_app.settings import add_common_options, positive_int, resolve, share


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``crowd-errors``."""
    parser = subparsers.add_parser(
        "crowd-errors", help="list likely crowd errors among the labelled stacks, for a second look",
        description="""Rank the labelled stacks whose out-of-fold model score contradicts a low-margin crowd answer
                    (cleanlab's find_label_issues), most likely error first. Needs a run's out-of-fold scores of
                    the labelled stacks: `stalltriage predict --split all`.""")
    parser.add_argument("--model-run", type=positive_int, default=None, metavar="ID",
                        help="model run id (default: the newest)")
    parser.add_argument("--out", type=Path, default=None, metavar="CSV", help="write every flagged stack here")
    parser.add_argument("--max-margin", type=share, default=None,
                        help="largest crowd margin |2 crowd_score - 1| still open to doubt "
                             "(default 0.6: votes up to 80:20; 1 = any vote)")
    parser.add_argument("--filter-by", choices=FILTERS, default=FILTERS[0],
                        help="cleanlab's rule: predicted_neq_given (default: the model gives the answer "
                             "< 0.5), prune_by_noise_rate (confident learning's pruning: fewer, surer) or "
                             "low_self_confidence (fewest)")
    parser.add_argument("--show", type=positive_int, default=20, help="stacks listed on screen (default 20)")
    parser.add_argument("--second-look", action="store_true",
                        help="queue every flagged stack for an admin's second look: admins are served them "
                             "first in the review page, and a stalled/flowing answer replaces the crowd's as "
                             "the stack's reference and final label")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Find and list the likely crowd errors; returns 1 when there is no run or nothing to judge."""
    from core.labels.crowd_errors import DEFAULT_MAX_MARGIN
    from db.migrate import SchemaError
    from db.predictions import get_model_run
    from db.second_look import request_second_looks
    from triage_app.crowd_errors import likely_crowd_errors
    from triage_app.database import command_session

    margin = DEFAULT_MAX_MARGIN if args.max_margin is None else args.max_margin
    try:
        with command_session(resolve(args).db_url, write=args.second_look) as session:
            model_run = get_model_run(session, run_id=args.model_run)
            if model_run is None:
                print("error: no model run " + (f"with id {args.model_run}" if args.model_run else
                                                "in the database: run `stalltriage predict` first"))
                return 1
            found = likely_crowd_errors(session, model_run_id=model_run.id, max_margin=margin,
                                        filter_by=args.filter_by)
            if found.judged and args.second_look:
                queued = request_second_looks(session, stacks=found.flagged, model_run_id=model_run.id,
                                              actor="cli")
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    if not found.judged:
        print(f"error: run {model_run.id} scored no labelled stack out of fold: "
              "run `stalltriage predict --split all` with it first")
        return 1
    flagged = found.flagged
    looked = f"; {found.looked_at} already had a second look" if found.looked_at else ""
    print(f"{len(flagged)} likely crowd errors among {found.judged} labelled stacks scored out of fold by run "
          f"{model_run.id} (cleanlab {args.filter_by}; crowd margin <= {margin:g}{looked})")
    if len(flagged):
        print(flagged.head(args.show).loc[:, ["filename", "label", "crowd_score", "tier1", "probability", "reason"]]
              .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        flagged.to_csv(args.out, index=False)
        print(f"wrote {len(flagged)} stacks to {args.out}")
    if args.second_look:
        print(f"queued {queued} stacks for an admin's second look ({len(flagged) - queued} were queued before); "
              "admins are served them first on the Review page")
    return 0
