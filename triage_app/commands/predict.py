"""``stalltriage predict --model RUN_DIR``: score stacks with a trained ensemble, write a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from triage_app.settings import add_common_options, count, positive_int, resolve

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.model.rundir import RunDir
    from db.recording import NewStacksThreshold


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``predict`` sub-command."""
    parser = subparsers.add_parser(
        "predict", help="score stacks with a trained ensemble (probability and spread per stack)",
        description="""Score the ingested stacks with the run's cross-fitted ensemble and test-time augmentation: each
                    stack is scored by one fold's members, the fold that held it out when the run trained on it
                    (role out_of_fold), else the fold a hash of its filename picks (role held_out when it has a
                    label or crowd score, new otherwise). Launch with `torchrun --nproc_per_node N -m
                    triage_app.cli predict ...` to shard the stacks over N processes; rank 0 writes the one result.
                    The run's single threshold (submission export, dashboard) is then re-chosen for the stall share
                    estimated for the stacks it did not train on (label shift: labelled sets are enriched for
                    stalls); the out-of-fold threshold stays in the run's metrics.""")
    parser.add_argument("--model", type=Path, required=True, metavar="RUN_DIR", help="a finished training run")
    parser.add_argument("--split", choices=("test", "all"), default="test", help="which stacks (default test)")
    parser.add_argument("--out", type=Path, default=None, metavar="CSV",
                        help="output CSV (default RUN_DIR/predictions_<split>.csv)")
    parser.add_argument("--tta", type=int, choices=(1, 2, 4, 8), default=None,
                        help="flip views (default: the run's, which its threshold was chosen with)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="stacks per batch (default 8)")
    parser.add_argument("--workers", type=count, default=0, help="DataLoader worker processes (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the stacks from the database, score them (sharded under torchrun), write the CSV and store
    the scores; returns the exit code."""
    import torch

    from db.migrate import SchemaError
    from training import distributed
    from triage_app.database import command_sessions

    settings = resolve(args)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    dist = distributed.init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    try:
        with command_sessions(settings.db_url) as factory:
            return _predict(args, settings, factory, device, dist)
    except SchemaError as error:
        print(f"error: {error}")
        return 1
    finally:
        distributed.shutdown(dist)


def _predict(args: argparse.Namespace, settings, factory, device, dist) -> int:  # noqa: ANN001 - Settings, sessionmaker
    from db.vessels import stack_records

    with factory() as session:
        records = stack_records(session, split=None if args.split == "all" else args.split)
    if not records:
        print(f"error: no ingested {args.split} stacks in the database {settings.db_url}")
        return 1
    frame = _score_shard(args, records, settings.store_path, device, dist)
    if frame is None:  # the run is not usable: every rank printed the same error
        return 1
    return _write_results(args, factory, frame) if dist.is_main else 0


def _score_shard(args: argparse.Namespace, records: list, store_path, device, dist):
    """This rank's share of ``records`` scored, gathered on rank 0 in ``records`` order (``None`` on error)."""
    import pandas as pd

    from core.model.predict import predict_stacks
    from training import distributed

    try:
        frame = predict_stacks(args.model, records[dist.rank::dist.world_size], store_path, tta=args.tta,
                               batch_size=args.batch_size, workers=args.workers, device=device,
                               progress=dist.is_main)
    except FileNotFoundError as error:
        print(f"error: {error}")
        return None
    parts = distributed.gather_to_main(frame, dist)
    if parts is None:
        return frame
    merged = pd.concat(parts, ignore_index=True).set_index("filename").loc[[r.filename for r in records]]
    merged = merged.reset_index()
    merged.attrs["threshold"] = frame.attrs["threshold"]
    return merged


def _write_results(args: argparse.Namespace, factory, frame) -> int:  # noqa: ANN001 - sessionmaker
    """Rank 0: the CSV, the summary line and the database rows."""
    from core.labels.records import PREDICTION_ROLES
    from core.model.rundir import RunDir
    from db.recording import record_predictions
    from triage_app import projects

    out = args.out or args.model / f"predictions_{args.split}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    threshold = frame.attrs["threshold"]
    roles = frame["role"].value_counts()
    print(f"scored {len(frame)} stacks ({', '.join(f'{roles.get(r, 0)} {r}' for r in PREDICTION_ROLES)}); "
          f"{int((frame['probability'] >= threshold).sum())} at or above the run's threshold {threshold:.4f}; "
          f"wrote {out}")
    layout = RunDir(args.model)
    config, tuned = (layout.read_json(path) if path.exists() else {} for path in (layout.config, layout.threshold))
    with factory.begin() as session:
        report = record_predictions(session, name=str(args.model.resolve()), config=config, threshold=tuned,
                                    predictions=frame, source=str(args.model))
        shift = threshold_for_new_stacks(session, layout, str(args.model.resolve()), threshold)
        paused = projects.pause_drifted(session, actor="predict")
    for issue in report.issues:
        print(issue)
    print(f"stored {report.added} predictions in the database for run {args.model.resolve()}")
    if shift is not None:
        print(describe_shift(shift))
    for project, reason in paused.items():
        print(f"warning: project {project or '(none)'} {reason}")
    return 1 if report.issues else 0


def threshold_for_new_stacks(session: Session, layout: RunDir, name: str,
                              oof_threshold: float) -> NewStacksThreshold | None:
    """Set the run's threshold for its new stacks' estimated stall share (``db.recording``); None
    without out-of-fold predictions in the run directory or new stacks in the database. ``predict``
    and ``retrain`` both apply it after storing a run's scores."""
    import pandas as pd

    from db.predictions import get_model_run
    from db.recording import set_threshold_for_new_stacks

    if not layout.oof.exists():
        return None
    reference = pd.read_csv(layout.oof, usecols=["label", "probability"])
    run = get_model_run(session, name=name)
    return set_threshold_for_new_stacks(session, model_run_id=run.id, reference=reference,
                                        oof_threshold=oof_threshold)


def describe_shift(shift: NewStacksThreshold) -> str:
    """Two lines for people: the new stacks' estimated stall share beside the reference's and the
    crowd's, and the threshold now applied to them."""
    est = shift.estimate
    crowd = (f"; the crowd says {shift.crowd_share:.1%} of the {shift.n_crowd} with a crowd answer"
             if shift.crowd_share is not None else "")
    return (f"new stacks: estimated stall share {est.share:.1%} (95% interval {est.low:.1%}-{est.high:.1%}, "
            f"{est.n_new} stacks) vs {est.reference_share:.1%} in the out-of-fold reference{crowd}\n"
            f"single threshold for new stacks (submission export, dashboard): {shift.threshold:.4f} "
            f"(MCC-optimal at that share; out-of-fold threshold {shift.oof_threshold:.4f})")
