"""``stalltriage train --out RUN_DIR``: train the cross-validated 3D-CNN ensemble on the database's labels."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` sub-command (its options are :class:`training.config.TrainConfig`'s fields)."""
    from training.config import add_arguments

    parser = subparsers.add_parser(
        "train", help="train the 3D-CNN ensemble (K-fold CV) into a run directory",
        description="""Train a K-fold cross-validated 3D-CNN ensemble on the labelled training stacks in the database
                    (read from the volume store). Without options it uses the recipe for the device it finds
                    (--recipe auto: the CPU recipe on a CPU, the full-size GPU recipe on CUDA); options given
                    override the recipe. Rerunning the same command after a crash resumes from the last finished
                    epoch. Launch with `torchrun --nproc_per_node N -m triage_app.cli train ...` for DDP.""")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    add_arguments(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-reviews", dest="reviews", action="store_false",
                        help="train on crowd labels only (default: reviewers' labels join them, see "
                             "db.training_labels)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the training records from the database and train; returns the exit code."""
    import torch

    from core.model.nets import list_models
    from db.migrate import SchemaError
    from db.training_labels import training_records
    from training.config import config_from_args
    from training.cv import train_cv
    from triage_app.database import command_session

    config = config_from_args(args)
    if config.arch not in list_models():
        print(f"error: unknown --arch {config.arch!r}; known: {', '.join(list_models())}")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = resolve(args)
    try:
        with command_session(settings.db_url) as session:
            records = training_records(session, reviews=args.reviews, unlabelled=config.unlabelled != "off")
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    if args.reviews:
        print(f"{sum(r.source == 'review' for r in records)} labels from reviews (--no-reviews leaves them out)")
    command = shlex.join(["stalltriage", *getattr(args, "argv", sys.argv[1:])])
    try:
        report = train_cv(records, settings.store_path, args.out, config, command=command)
    except ValueError as error:
        print(f"error: {error}")
        return 1
    if report:
        print(f"out-of-fold: AUC {report['auc']:.4f}  MCC {report['mcc']:.4f}  sensitivity "
              f"{report['sensitivity']:.4f}  specificity {report['specificity']:.4f}  threshold "
              f"{report['threshold']:.4f}\nrun directory: {args.out} (model card: {args.out / 'model_card.md'})")
    return 0

