"""``stalltriage tune``: choose the two thresholds against crowd answers and make them the active policy."""

from __future__ import annotations

import argparse

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``tune``."""
    parser = subparsers.add_parser(
        "tune", help="tune the triage thresholds against crowd answers and save them as the active policy",
        description="Pick t_low and t_high so that the most stacks are decided automatically while the "
                    "combined labels keep sensitivity and specificity above the targets at the given "
                    "confidence. The reference is every crowd-labelled stack scored out of fold or held "
                    "out; routed stacks count with the reviewers' error rates, measured on the known-answer "
                    "stacks of the policy's routed band (or a stated prior while there are none).")
    parser.add_argument("--sensitivity", type=float, default=0.99, help="target sensitivity (default 0.99)")
    parser.add_argument("--specificity", type=float, default=0.95, help="target specificity (default 0.95)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence of the bounds the targets apply to (default 0.95)")
    parser.add_argument("--model-run", type=int, default=None, metavar="ID",
                        help="model run id (default: the newest run)")
    parser.add_argument("--reviews-required", type=int, default=1, metavar="K",
                        help="human reviews needed per routed stack (default 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the policy without saving it")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tune, print and (unless ``--dry-run``) save; returns the exit code."""
    from db.errors import DatabaseInputError
    from db.migrate import SchemaError
    from db.predictions import get_model_run
    from triage_app import tuning
    from triage_app.database import command_session

    try:
        with command_session(resolve(args).db_url, write=True) as session:
            run_row = get_model_run(session, run_id=args.model_run)
            if run_row is None:
                which = f"no model run with id {args.model_run}" if args.model_run else "no model run yet"
                print(f"error: {which}; run `stalltriage predict` first")
                return 1
            reference = tuning.tuning_reference(session, model_run_id=run_row.id)
            known = tuning.known_answers_for(session, model_run_id=run_row.id,
                                             reviews_required=args.reviews_required)
            try:
                outcome = tuning.tune(reference.frame, sensitivity=args.sensitivity, specificity=args.specificity,
                                      confidence=args.confidence, known=known)
            except ValueError as error:
                print(f"error: run {run_row.id} ({run_row.name}): {error}")
                return 1
            _print(run_row, reference, known, outcome, args)
            if not outcome.tuned.feasible_:
                print("no policy meets the targets; the active policy is unchanged")
                return 1
            if args.dry_run:
                return 0
            policy = tuning.save_thresholds(session, model_run_id=run_row.id, t_low=outcome.tuned.t_low_,
                                            t_high=outcome.tuned.t_high_, reviews_required=args.reviews_required,
                                            sensitivity=args.sensitivity, specificity=args.specificity,
                                            confidence=args.confidence, actor="cli")
            print(f"saved as the active policy (id {policy.id}): {_sides(policy.t_low, policy.t_high)}")
            return 0
    except (SchemaError, DatabaseInputError) as error:
        print(f"error: {error}")
        return 1


def _side(value: float | None) -> str:
    return "none (decides nothing)" if value is None else f"{value:.6g}"


def _sides(t_low: float | None, t_high: float | None) -> str:
    return f"t_low={_side(t_low)}, t_high={_side(t_high)}"


def _print(run_row, reference, known, outcome, args: argparse.Namespace) -> None:  # noqa: ANN001 - db rows
    from triage_app import tuning

    report = outcome.tuned.report_
    print(f"model run {run_row.id} ({run_row.name})")
    print(f"reference: {reference.describe()}")
    print(f"humans: {tuning.describe_humans(report, known)}")
    for message in outcome.warnings:
        print(f"warning: {message}")
    print(f"targets: sensitivity >= {args.sensitivity}, specificity >= {args.specificity} "
          f"at {args.confidence:.0%} confidence, human error included")
    print(f"policy: t_low = {_side(report.t_low)} (auto flowing), t_high = {_side(report.t_high)} (auto stalled)")
    print(f"automatic: {report.auto_share:.1%} ({report.n_auto_flowing} flowing, {report.n_auto_stalled} stalled, "
          f"{report.n_human} to humans)")
    print(f"sensitivity {report.sensitivity:.4f} (lower bound {report.sensitivity_lower:.4f}; {report.misses} missed "
          f"by the model, {report.unreviewed_stalled} stalls routed to humans)")
    print(f"specificity {report.specificity:.4f} (lower bound {report.specificity_lower:.4f}; {report.false_alarms} "
          f"false alarms by the model, {report.unreviewed_flowing} flowing stacks routed to humans)")
