"""What a run writes for people and for ``predict``: config, metrics log, threshold, model card."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict

import monai
import pandas as pd
import torch

from core.model.nets import create_model
from core.model.rundir import RunDir, write_atomic
from training.config import TrainConfig
from training.dataset import TrainSample
from training.evaluation import best_mcc_threshold, score_report

METRIC_COLUMNS = ["fold", "epoch", "lr", "train_loss", "val_loss", "auc", "mcc", "threshold",
                  "sensitivity", "specificity", "seconds"]


def _data_summary(samples: Sequence[TrainSample], unlabelled: Sequence[str]) -> dict:
    content = sorted((s.filename, s.label, round(s.target, 6)) for s in samples)
    if unlabelled:  # a run without unlabelled stacks keeps the digest it always had
        content = [content, sorted(unlabelled)]
    return {"stacks": len(samples), "stalled": sum(s.label for s in samples),
            "tier1": sum(s.tier1 for s in samples), "from_reviews": sum(s.source == "review" for s in samples),
            "projects": len({s.project_id for s in samples}), "unlabelled": len(unlabelled),
            "sha256": hashlib.sha256(json.dumps(content).encode()).hexdigest()}


def write_config(run: RunDir, config: TrainConfig, samples: Sequence[TrainSample], command: str,
                 unlabelled: Sequence[str] = ()) -> None:
    """Write ``config.json``, or check that an existing one describes the same run and data
    (``unlabelled``: the stacks without an answer it learns from, by filename).

    Raises
    ------
    ValueError
        If the directory holds a run with other options or other training data.
    """
    data = _data_summary(samples, unlabelled)
    if run.config.exists():
        old = run.read_json(run.config)
        defaults = TrainConfig()  # an option newer than the run: the run had its default
        changed = [k for k, v in config.identity().items() if old.get(k, getattr(defaults, k)) != v]
        if old.get("data", {}).get("sha256") != data["sha256"]:
            changed.append("training data")
        if changed:
            raise ValueError(f"{run.root}: holds a different run (differs in {', '.join(changed)}); "
                             "use a new --out directory")
        return
    run.root.mkdir(parents=True, exist_ok=True)
    spec = config.input_spec()
    model = create_model(config.arch, in_channels=spec.channels, **config.model_kwargs)
    run.write_json(run.config, config.as_dict() | {
        "input": asdict(spec),
        "data": data, "command": command,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "versions": {"torch": torch.__version__, "monai": monai.__version__}})


def append_metrics(run: RunDir, row: dict) -> None:
    """Append one epoch's row to ``metrics.csv`` (header on first write)."""
    frame = pd.DataFrame([row], columns=METRIC_COLUMNS)
    frame.to_csv(run.metrics, mode="a", header=not run.metrics.exists(), index=False)


def trim_metrics(run: RunDir, fold: int, start_epoch: int) -> None:
    """Drop rows of ``fold`` from epoch ``start_epoch`` on (left by a run killed mid-epoch) and later folds."""
    if not run.metrics.exists():
        return
    frame = pd.read_csv(run.metrics)
    keep = (frame["fold"] < fold) | ((frame["fold"] == fold) & (frame["epoch"] <= start_epoch))
    if not keep.all():
        write_atomic(run.metrics, frame[keep].to_csv(index=False))


def finish_run(run: RunDir, config: TrainConfig, samples: Sequence[TrainSample], command: str) -> dict:
    """Merge the folds' out-of-fold predictions, choose the threshold, write the model card."""
    oof = pd.concat([pd.read_csv(run.fold_oof(k), dtype={"filename": str}) for k in range(config.folds)])
    oof = oof.drop(columns="fold_seconds").sort_values("filename").reset_index(drop=True)
    threshold, _ = best_mcc_threshold(oof["label"], oof["probability"])
    report = score_report(oof["label"], oof["probability"], threshold)
    write_atomic(run.oof, oof.to_csv(index=False))
    run.write_json(run.threshold, {"threshold": threshold, "chosen_by": "max MCC on out-of-fold predictions",
                                   "tta": config.tta, "oof": report})
    _write_model_card(run, config, samples, report, command)
    return report


def _unlabelled_line(config: TrainConfig, n: int) -> str:
    if config.unlabelled == "off" or not n:
        return "- Stacks without an answer: not used"
    teacher = config.warm_start or "a first stage on the labelled stacks alone (teacher/)"
    return (f"- Stacks without an answer: {n}, each trained on by every fold but the one that scores it, "
            f"on the teacher's probability (teacher: {teacher}; training.pseudo)")


def _write_model_card(run: RunDir, config: TrainConfig, samples: Sequence[TrainSample], report: dict,
                      command: str) -> None:
    cfg = run.read_json(run.config)
    data = cfg["data"]
    metrics = pd.read_csv(run.metrics) if run.metrics.exists() else pd.DataFrame(columns=METRIC_COLUMNS)
    epochs = metrics.groupby("fold")["epoch"].max().to_dict() if len(metrics) else {}
    minutes = metrics.groupby("fold")["seconds"].max().sum() / 60 if len(metrics) else 0.0
    spec = config.input_spec()
    lines = [
        f"# Model card: {run.root.name}", "",
        f"- Created: {cfg['created']}; finished {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
        f"- Command: `{command or cfg.get('command', '')}`",
        f"- Recipe: `{config.recipe}` ({'the full-size GPU recipe' if config.recipe == 'gpu' else 'the CPU recipe'}"
        f", device {config.resolved_device()})",
        f"- Network: `{config.arch}`{f' {config.model_kwargs}' if config.model_kwargs else ''} "
        f"({cfg['parameters']:,} parameters), "
        f"input {config.max_depth}×{'×'.join(map(str, spec.grid))} "
        f"({'the outlined vessel straightened, along × across' if spec.vessel else 'the ROI resized'}; "
        f"{'depth cropped to the vessel in focus, ' if spec.focus_depth else ''}depth stride + pad, depth mask)"
        f"{', outline mask as a second channel' if spec.mask_channel else ''}"
        f"{', features pooled inside the outline' if config.outline_pool else ''}",
        f"- Data: {data['stacks']} training stacks ({data['stalled']} stalled, {data['tier1']} tier 1, "
        f"{data.get('from_reviews', 0)} labelled by reviewers, {data['projects']} projects); "
        f"tier 2: {config.tier2}; soft labels: {config.soft_labels}",
        _unlabelled_line(config, data.get("unlabelled", 0)),
        f"- Training: {config.folds}-fold CV grouped by project, {config.loss} loss, AdamW lr {config.lr}, "
        f"warm-up + cosine, stalled share {config.stalled_share}, {config.snapshots} snapshots per fold, "
        f"TTA {config.tta} views",
        f"- Epochs per fold: {epochs}; training time {minutes:.1f} min "
        f"(budget: {config.time_budget_min or 'none'} min)", "",
        "## Out-of-fold metrics (every training stack scored by the fold that never saw it)", "",
        "| AUC | MCC | threshold | sensitivity | specificity | log loss |", "|---|---|---|---|---|---|",
        f"| {report['auc']:.4f} | {report['mcc']:.4f} | {report['threshold']:.4f} | "
        f"{report['sensitivity']:.4f} | {report['specificity']:.4f} | {report['loss']:.4f} |", "",
        "The threshold maximises MCC on these out-of-fold predictions; `stalltriage predict --model "
        f"{run.root}` uses it. Synthetic or lab data may differ from what a new project looks like: "
        "check held-out projects before trusting auto-accepted labels.", ""]
    write_atomic(run.model_card, "\n".join(lines))
