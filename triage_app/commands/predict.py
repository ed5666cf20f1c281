"""``stalltriage predict --model RUN_DIR``: score stacks with a trained ensemble, write a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from triage_app.settings import add_common_options, resolve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``predict`` sub-command."""
    parser = subparsers.add_parser(
        "predict", help="score stacks with a trained ensemble (probability and spread per stack)",
        description="Score the ingested stacks with the run's ensemble and test-time augmentation. "
                    "Stacks the run trained on get their out-of-fold score (out_of_fold=True).")
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_DIR", help="a finished training run")
    parser.add_argument("--split", choices=("test", "all"), default="test", help="which stacks (default test)")
    parser.add_argument("--out", type=Path, default=None, metavar="CSV",
                        help="output CSV (default RUN_DIR/predictions_<split>.csv)")
    parser.add_argument("--tta", type=int, choices=(1, 2, 4, 8), default=None,
                        help="flip views (default: the run's, which its threshold was chosen with)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the stacks from the database, score them, write the CSV and store the scores; returns the exit code."""
    from db.migrate import SchemaError
    from triage_app.database import command_sessions

    settings = resolve(args)
    try:
        with command_sessions(settings.db_url) as factory:
            return _predict(args, settings, factory)
    except SchemaError as error:
        print(f"error: {error}")
        return 1


def _predict(args: argparse.Namespace, settings, factory) -> int:  # noqa: ANN001 - Settings, sessionmaker
    import torch

    from core.predict import predict_stacks
    from core.rundir import RunDir
    from db.recording import record_predictions
    from db.vessels import stack_records

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    with factory() as session:
        records = stack_records(session, split=None if args.split == "all" else args.split)
    if not records:
        print(f"error: no ingested {args.split} stacks in the database {settings.db_url}")
        return 1
    try:
        frame = predict_stacks(args.model, records, settings.store_path, tta=args.tta, batch_size=args.batch_size,
                               workers=args.workers, device=device)
    except FileNotFoundError as error:
        print(f"error: {error}")
        return 1
    out = args.out or args.model / f"predictions_{args.split}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    threshold = frame.attrs["threshold"]
    print(f"scored {len(frame)} stacks ({int(frame['out_of_fold'].sum())} out of fold); "
          f"{int((frame['probability'] >= threshold).sum())} at or above the run's threshold {threshold:.4f}; "
          f"wrote {out}")
    layout = RunDir(args.model)
    config, tuned = (layout.read_json(path) if path.exists() else {} for path in (layout.config, layout.threshold))
    with factory.begin() as session:
        report = record_predictions(session, name=str(args.model.resolve()), config=config, threshold=tuned,
                                    predictions=frame, source=str(args.model))
    for issue in report.issues:
        print(issue)
    print(f"stored {report.added} predictions in the database for run {args.model.resolve()}")
    return 1 if report.issues else 0
