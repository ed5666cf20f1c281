"""``stalltriage tune``: choose the two thresholds against crowd answers and make them the active policy."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from core.policy.promise import DEFAULT_PROMISE, PROMISES, promise_sentence
from triage_app.settings import add_common_options, positive_int, probability, resolve, share

if TYPE_CHECKING:
    import pandas as pd


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``tune``."""
    parser = subparsers.add_parser(
        "tune", help="tune the triage thresholds against crowd answers and save them as the active policy",
        description="""Pick t_low and t_high so that the most stacks are decided automatically while the promise holds
                    at the given confidence (both sides together). The default promise is relative to the human
                    standard: the automatic decisions change at most 1 - sensitivity of the human 'stalled' answers
                    and 1 - specificity of the human 'flowing' ones; each threshold is chosen by fixed-sequence
                    testing, valid for the thresholds actually chosen. --promise absolute bounds the combined
                    labels against the truth with human error counted (known answers of the policy's routed band, a
                    stated assumption, or a pessimistic prior). The reference is every crowd-labelled stack scored
                    out of fold or held out. Prints both readings, the frontier (automatic share against the bounds
                    in reach), what a larger reference would buy, and the new stacks' stall share against the
                    reference's. Each project is decided automatically only on the sides its own human answers
                    validate (the validation gate), and on none while its stacks drift from its reference; the
                    projects' standing is printed and saved with the policy.""")
    parser.add_argument("--promise", choices=PROMISES, default=DEFAULT_PROMISE,
                        help=f"which promise the targets keep (default {DEFAULT_PROMISE})")
    parser.add_argument("--sensitivity", type=probability, default=0.99, help="target sensitivity (default 0.99)")
    parser.add_argument("--specificity", type=probability, default=0.95, help="target specificity (default 0.95)")
    parser.add_argument("--confidence", type=probability, default=0.95,
                        help="confidence of both bounds together (default 0.95; each side at half the risk)")
    parser.add_argument("--human-sensitivity", type=share, default=None, metavar="S",
                        help="absolute promise: assume the humans' final label finds this share of stalls "
                             "(stated, not measured; with --human-specificity)")
    parser.add_argument("--human-specificity", type=share, default=None, metavar="P",
                        help="absolute promise: assume the humans' final label keeps this share of flowing stacks")
    parser.add_argument("--model-run", type=positive_int, default=None, metavar="ID",
                        help="model run id (default: the newest run)")
    parser.add_argument("--reviews-required", type=positive_int, default=1, metavar="K",
                        help="human reviews needed per routed stack (default 1)")
    parser.add_argument("--accept-shortfall", action="store_true",
                        help="save the proposed policy even when it misses a target (the shortfall is named)")
    parser.add_argument("--dry-run", action="store_true", help="print the policy without saving it")
    add_common_options(parser)
    parser.set_defaults(func=run)


def _assumed(args: argparse.Namespace):  # noqa: ANN202 - HumanErrorRates | None
    """The stated human error rates, or None; both options or neither."""
    from triage_app import tuning

    given = (args.human_sensitivity, args.human_specificity)
    if given == (None, None):
        return None
    if None in given:
        raise SystemExit("error: --human-sensitivity and --human-specificity go together")
    try:
        return tuning.assumed_humans(*given)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def run(args: argparse.Namespace) -> int:
    """Tune, print and (unless ``--dry-run``, or a shortfall without ``--accept-shortfall``) save."""
    from db.errors import DatabaseInputError
    from db.migrate import SchemaError
    from db.predictions import get_model_run
    from triage_app import projects, tuning
    from triage_app.database import command_session

    assumed = _assumed(args)
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
                                      confidence=args.confidence, known=known, promise=args.promise,
                                      assumed=assumed,
                                      new_scores=tuning.new_stack_scores(session, model_run_id=run_row.id))
            except ValueError as error:
                print(f"error: run {run_row.id} ({run_row.name}): {error}")
                return 1
            standing = projects.project_standing(session, model_run_id=run_row.id, t_low=outcome.tuned.t_low_,
                                                 t_high=outcome.tuned.t_high_, sensitivity=args.sensitivity,
                                                 specificity=args.specificity, confidence=args.confidence)
            _print(run_row, reference, known, outcome, args)
            print("projects (each decided automatically only on the sides its own answers validate):")
            print(_table(projects.standing_table(standing)))
            print(f"{projects.summary(standing)}\n")
            if not outcome.saveable and not args.accept_shortfall:
                print(f"not saved: {_shortfall(outcome)}; the active policy is unchanged "
                      "(--accept-shortfall saves it anyway)")
                return 1
            if args.dry_run:
                return 0
            policy = tuning.save_thresholds(session, model_run_id=run_row.id, t_low=outcome.tuned.t_low_,
                                            t_high=outcome.tuned.t_high_, reviews_required=args.reviews_required,
                                            sensitivity=args.sensitivity, specificity=args.specificity,
                                            confidence=args.confidence, actor="cli", promise=args.promise,
                                            stall_share=float(reference.frame["label"].mean()), standing=standing)
            shortfall = "" if outcome.saveable else f" despite the shortfall ({_shortfall(outcome)})"
            print(f"saved as the active policy (id {policy.id}){shortfall}: {_sides(policy.t_low, policy.t_high)}; "
                  f"{projects.summary(standing)}")
            return 0
    except (SchemaError, DatabaseInputError) as error:
        print(f"error: {error}")
        return 1


def _shortfall(outcome) -> str:  # noqa: ANN001 - a tuning.TuneOutcome
    from triage_app import tuning

    return tuning.shortfall(outcome.tuned.report_, sensitivity=outcome.tuned.sensitivity,
                            specificity=outcome.tuned.specificity)


def _side(value: float | None) -> str:
    return "none (decides nothing)" if value is None else f"{value:.6g}"


def _sides(t_low: float | None, t_high: float | None) -> str:
    return f"t_low={_side(t_low)}, t_high={_side(t_high)}"


def _reading(report) -> str:  # noqa: ANN001 - PolicyReport
    """One report's bounds with the counts they rest on."""
    return (f"sensitivity >= {report.sensitivity_lower:.4f} ({report.misses} of the reference's stalls decided "
            f"flowing), specificity >= {report.specificity_lower:.4f} ({report.false_alarms} flowing stacks decided "
            f"stalled)")


def _print(run_row, reference, known, outcome, args: argparse.Namespace) -> None:  # noqa: ANN001 - db rows
    from triage_app import tuning

    report, other = outcome.tuned.report_, outcome.other
    print(f"model run {run_row.id} ({run_row.name})")
    print(f"reference: {reference.describe()}")
    sentence = promise_sentence(args.promise, sensitivity=args.sensitivity, specificity=args.specificity,
                                confidence=args.confidence)
    print(f"promise: {sentence}")
    print(f"humans (absolute reading): {tuning.describe_humans(report if args.promise == 'absolute' else other, known)}")
    for message in outcome.warnings:
        print(f"warning: {message}")
    print(f"policy: t_low = {_side(report.t_low)} (auto flowing), t_high = {_side(report.t_high)} (auto stalled)")
    print(f"automatic: {report.auto_share:.1%} ({report.n_auto_flowing} flowing, {report.n_auto_stalled} stalled, "
          f"{report.n_human} to humans)")
    print(f"{args.promise} reading (the promise): {_reading(report)}")
    print(f"{other.promise} reading (beside it): {_reading(other)}")
    if outcome.share is not None:
        prefix = "warning: " if not outcome.share.holds else ""
        print(f"{prefix}stall share: {outcome.share.describe()}")
    print("\nfrontier (the best bounds a policy deciding at least this share reaches):")
    print(_table(tuning.frontier_table(outcome)))
    print("\nwhat a larger reference would buy (relative promise, same error rates):")
    print(_table(tuning.more_data_table(outcome)))
    print()


def _table(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False)
