"""``stalltriage train --out RUN_DIR``: train the cross-validated 3D-CNN ensemble on the database's labels."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``train`` sub-command (defaults come from :class:`training.config.TrainConfig`)."""
    from training.config import TrainConfig

    d = TrainConfig()
    parser = subparsers.add_parser(
        "train", help="train the 3D-CNN ensemble (K-fold CV) into a run directory",
        description="Train a K-fold cross-validated 3D-CNN ensemble on the labelled training stacks in "
                    "the database (read from the volume store). Rerunning the same command after a "
                    "crash resumes from the last finished epoch. Launch with `torchrun "
                    "--nproc_per_node N -m triage_app.cli train ...` for DDP.")
    parser.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory")
    parser.add_argument("--arch", default=d.arch, help=f"network (default {d.arch}; an unknown name lists the known ones)")
    parser.add_argument("--width", type=int, default=None,
                        help="channel width of the compact nets (default: plain3d 16, slim3d 12)")
    parser.add_argument("--init", dest="init_checkpoint", default=None, metavar="PATH",
                        help="initial weights: our checkpoint or a 2D ImageNet state dict (inflated to 3D)")
    parser.add_argument("--folds", type=int, default=d.folds, help=f"cross-validation folds (default {d.folds})")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"epochs per fold, at most (default {d.epochs})")
    parser.add_argument("--time-budget", dest="time_budget_min", type=float, default=None, metavar="MIN",
                        help="total training minutes, split over the folds; each fold shortens its "
                             "schedule to fit and still leaves its ensemble members")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak AdamW learning rate (default {d.lr})")
    parser.add_argument("--weight-decay", type=float, default=d.weight_decay)
    parser.add_argument("--loss", choices=("bce", "focal"), default=d.loss)
    parser.add_argument("--stalled-share", type=float, default=d.stalled_share,
                        help=f"share of stalled stacks drawn per epoch (default {d.stalled_share}; 0 = natural share)")
    parser.add_argument("--soft-labels", action="store_true", help="train on crowd scores as soft targets")
    parser.add_argument("--tier2", choices=("off", "soft", "cut"), default=d.tier2,
                        help="add non-tier-1 stacks: crowd score as soft label, or stalled if score > --tier2-cut")
    parser.add_argument("--tier2-cut", type=float, default=d.tier2_cut)
    parser.add_argument("--size", type=int, default=d.size, help=f"slice height and width (default {d.size})")
    parser.add_argument("--max-depth", type=int, default=d.max_depth, help=f"slices kept per stack (default {d.max_depth})")
    parser.add_argument("--elastic", dest="elastic_prob", type=float, default=d.elastic_prob,
                        help="probability of a 3D elastic deformation (default 0: slow on CPU)")
    parser.add_argument("--snapshots", type=int, default=d.snapshots, help=f"ensemble members per fold (default {d.snapshots})")
    parser.add_argument("--tta", type=int, choices=(1, 2, 4, 8), default=d.tta,
                        help="flip views for out-of-fold scores and, by default, for predict")
    parser.add_argument("--device", default=d.device, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes (default 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--no-reviews", dest="reviews", action="store_false",
                        help="train on crowd labels only (default: reviewers' labels join them, see "
                             "db.training_labels)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The :class:`training.config.TrainConfig` the options describe."""
    from training.config import TrainConfig

    return TrainConfig(
        arch=args.arch, model_kwargs={} if args.width is None else {"width": args.width},
        init_checkpoint=args.init_checkpoint, folds=args.folds, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, weight_decay=args.weight_decay, loss=args.loss,
        stalled_share=args.stalled_share or None, soft_labels=args.soft_labels, tier2=args.tier2,
        tier2_cut=args.tier2_cut, size=args.size, max_depth=args.max_depth, elastic_prob=args.elastic_prob,
        snapshots=args.snapshots, tta=args.tta, time_budget_min=args.time_budget_min, device=args.device,
        workers=args.workers, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Read the training records from the database and train; returns the exit code."""
    import torch

    from core.models import list_models
    from db.migrate import SchemaError
    from triage_app.database import command_session
    from db.training_labels import training_records
    from training.cv import train_cv

    if args.arch not in list_models():
        print(f"error: unknown --arch {args.arch!r}; known: {', '.join(list_models())}")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = resolve(args)
    try:
        with command_session(settings.db_url) as session:
            records = training_records(session, reviews=args.reviews)
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    if args.reviews:
        print(f"{sum(r.source == 'review' for r in records)} labels from reviews (--no-reviews leaves them out)")
    command = shlex.join(["stalltriage", *getattr(args, "argv", sys.argv[1:])])
    try:
        report = train_cv(records, settings.store_path, args.out, config_from_args(args), command=command)
    except ValueError as error:
        print(f"error: {error}")
        return 1
    if report:
        print(f"out-of-fold: AUC {report['auc']:.4f}  MCC {report['mcc']:.4f}  sensitivity "
              f"{report['sensitivity']:.4f}  specificity {report['specificity']:.4f}  threshold "
              f"{report['threshold']:.4f}\nrun directory: {args.out} (model card: {args.out / 'model_card.md'})")
    return 0

