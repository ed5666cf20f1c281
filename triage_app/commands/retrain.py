"""``stalltriage retrain``: fine-tune the active run on the grown label set, re-score, re-tune, activate if no worse."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from triage_app.settings import add_common_options, positive_int, positive_number, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``retrain`` (its training options are :class:`training.config.TrainConfig`'s fields)."""
    from training.config import add_arguments

    parser = subparsers.add_parser(
        "retrain", help="fine-tune the active run on crowd + reviewed labels; activate it only if no worse",
        description="""Warm-start every fold from the active policy's run (its last snapshot per fold, stacks keeping
                    their folds), fine-tune on the crowd labels plus the reviewers' labels within the time budget,
                    score every stack, tune a policy with the active policy's targets, confidence and k (human
                    error from known-answer stacks) and activate the new run and policy only if its bounds meet the
                    targets and it decides at least as much automatically. Otherwise the active policy stays and
                    the exit code is 1. Reviewers can keep working meanwhile.""")
    parser.add_argument("--out", type=Path, default=None, metavar="RUN_DIR",
                        help="new run directory (default: next to the active run, named <run>-r<UTC time>)")
    add_arguments(parser, ("epochs", "lr", "time_budget_min", "device"), own={
        "epochs": {"type": positive_int, "default": None, "default_help": "the run's"},
        "lr": {"type": positive_number, "default": None, "default_help": "half the run's"},
        "time_budget_min": {"type": positive_number, "default": 10.0, "default_help": "10"},
        "device": {"default": "auto"}})
    parser.add_argument("--status", type=Path, default=None, metavar="JSON",
                        help="progress file (default DATA_DIR/retrain/status.json; the app reads it)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Retrain, score, tune and maybe activate; returns the exit code (1: kept the old policy or failed)."""
    from db.migrate import SchemaError
    from triage_app import retraining
    from triage_app.database import command_sessions

    settings = resolve(args)
    status = args.status or retraining.status_path(settings.data_dir)
    retraining.write_status(status, "starting", "reading the active run")
    try:
        with command_sessions(settings.db_url) as factory:
            code, message = _retrain(args, settings, factory, status)
    except SchemaError as error:
        code, message = 1, f"error: {error}"
    print(message)
    if code != 0 and retraining.read_status(status)["state"] not in ("kept",):
        retraining.write_status(status, "failed", message)
    return code


def _retrain(args: argparse.Namespace, settings, factory, status: Path) -> tuple[int, str]:  # noqa: ANN001
    from core.model.predict import predict_stacks
    from core.model.rundir import RunDir
    from db.models import ModelRun
    from db.policy import active_policy
    from db.recording import record_predictions
    from db.training_labels import training_records
    from db.vessels import stack_records
    from training.cv import train_cv
    from training.warmstart import continuation_config
    from triage_app import retraining
    from triage_app.commands.predict import describe_shift, threshold_for_new_stacks

    with factory() as session:
        policy = active_policy(session)
        if policy is None:
            return 1, "error: no active policy; tune one first (`stalltriage tune`), retrain keeps its targets"
        old_run = session.get(ModelRun, policy.model_run_id)
        old_dir = Path(old_run.checkpoint_path or old_run.name)
        old = RunDir(old_dir)
        learns_unlabelled = old.config.exists() and old.read_json(old.config).get("unlabelled", "off") != "off"
        records = training_records(session, unlabelled=learns_unlabelled)
        everything = stack_records(session)
    if not old.is_complete():
        return 1, f"error: {old_dir}: the active run's directory is not a finished run; cannot warm-start from it"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    out = args.out or old_dir.parent / f"{old_dir.name.split('-r')[0]}-r{stamp}"
    reviewed = sum(r.source == "review" for r in records)
    retraining.write_status(status, "training", f"fine-tuning {old_dir.name} on {len(records)} ingested stacks "
                                                f"({reviewed} labelled by reviewers) for {args.time_budget_min} min",
                            run=str(out))
    print(f"warm start from {old_dir}; {reviewed} labels from reviews; new run {out}")
    command = shlex.join(["stalltriage", *getattr(args, "argv", sys.argv[1:])])
    try:
        config = continuation_config(old_dir, time_budget_min=args.time_budget_min, device=args.device,
                                     epochs=args.epochs, lr=args.lr)
        report = train_cv(records, settings.store_path, out, config, command=command)
    except (ValueError, FileNotFoundError) as error:
        return 1, f"error: {error}"
    print(f"out-of-fold: AUC {report['auc']:.4f}  MCC {report['mcc']:.4f}")
    retraining.write_status(status, "scoring", f"scoring {len(everything)} stacks with {out.name}", run=str(out))
    frame = predict_stacks(out, everything, settings.store_path, device=_device(args.device), progress=False)
    layout = RunDir(out)
    with factory.begin() as session:
        stored = record_predictions(session, name=str(out.resolve()), config=layout.read_json(layout.config),
                                    threshold=layout.read_json(layout.threshold), predictions=frame,
                                    source=str(out))
        run_id = session.scalar(_run_id(str(out.resolve())))
        shift = threshold_for_new_stacks(session, layout, str(out.resolve()), frame.attrs["threshold"])
    if stored.issues:
        return 1, "error: " + "; ".join(str(issue) for issue in stored.issues)
    if shift is not None:
        print(describe_shift(shift))
    retraining.write_status(status, "tuning", f"tuning a policy for {out.name}", run=str(out))
    with factory.begin() as session:
        outcome = retraining.tune_and_activate(session, model_run_id=run_id)
    state = "activated" if outcome.activated else "kept"
    message = outcome.reason if outcome.activated else f"kept the active policy: {outcome.reason}"
    retraining.write_status(status, state, message, run=str(out), new_auto_share=outcome.new_auto_share,
                            old_auto_share=outcome.old_auto_share)
    return (0 if outcome.activated else 1), message


def _run_id(name: str):  # noqa: ANN202 - a Select
    from sqlalchemy import select

    from db.models import ModelRun

    return select(ModelRun.id).where(ModelRun.name == name)


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name
