"""K-fold cross-validated training into a run directory, resumable and time-boxed.

Per fold: train with a balanced sampler and a warm-up + cosine schedule, evaluate on the held-out
fold every epoch (metrics.csv and the progress bar), keep the weights of the last ``snapshots``
epochs as ensemble members, then score the held-out fold with them (out-of-fold predictions).
After the last fold the decision threshold is chosen on all out-of-fold predictions.

Resume: after every epoch the fold's full state goes to ``checkpoint.pth``; finished folds are
marked by their ``oof.csv``. Rerunning the same command after a kill skips finished folds and
continues the current one from its last finished epoch.

Time budget: the remaining budget is split evenly over the remaining folds. While a fold trains,
its speed is measured every few steps and the cosine schedule is shortened to end at the fold's
deadline (:class:`training.budget.StepClock`), so every fold finishes its schedule, possibly
inside its first epoch on a slow or busy machine, and leaves its snapshots: stopping early still
gives a complete, usable ensemble.

Unlabelled stacks (``--unlabelled pseudo``): a teacher (the warm-started run, or a first stage
trained here in ``teacher/``) scores them, and each fold also trains on those it will not score,
on the teacher's probability (:mod:`training.pseudo` says why that keeps every score out of sample).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.labels.records import StackRecord
from core.model.nets import create_model
from core.model.predict import load_member, score_keys, score_loader
from core.model.preprocess import FocusedStack, pad_collate
from core.model.rundir import RunDir
from training import distributed
from training.budget import StepClock
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from training.config import UNCAPPED, TrainConfig
from training.dataset import TrainSample, make_dataset, select_samples
from training.engine import make_loss, make_optimiser, train_one_epoch
from training.evaluation import score_report
from training.folds import assign_folds
from training.pseudo import TEACHER_DIR, fold_samples, pseudo_labels, unlabelled_pool
from training.report import append_metrics, finish_run, trim_metrics, write_config
from training.sampler import BalancedSampler
from training.warmstart import fold_snapshot, warm_folds

log = logging.getLogger(__name__)

OOF_RESERVE = 0.05  # share of a fold's time budget kept for its final out-of-fold pass


@dataclass
class _Budget:
    """Seconds allowed in total (``None``: no limit) and already spent in finished folds."""

    total: float | None
    spent: float = 0.0

    def for_fold(self, fold: int, n_folds: int) -> float | None:
        return None if self.total is None else max(0.0, self.total - self.spent) / (n_folds - fold)


def train_cv(records: Sequence[StackRecord], store_path: str | Path, out_dir: str | Path,
             config: TrainConfig, *, command: str = "") -> dict:
    """Train the cross-validated ensemble on the training stacks among ``records``.

    Parameters
    ----------
    records
        Stacks with their labels; those of split ``"train"`` are candidates (see
        :func:`training.dataset.select_samples`).
    store_path
        The volume store holding the stacks.
    out_dir
        The run directory; if it holds an unfinished run of the same configuration, it resumes.
    config
        Training options.
    command
        The command line, for the model card.

    Returns
    -------
    dict
        Out-of-fold metrics at the chosen threshold (``auc``, ``mcc``, ``threshold``, ...).
    """
    device = config.resolved_device()
    dist = distributed.init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    run = RunDir(out_dir)
    samples = select_samples(records, tier2=config.tier2, tier2_cut=config.tier2_cut, soft_labels=config.soft_labels)
    pool = unlabelled_pool(records, samples) if config.unlabelled == "pseudo" else []
    if dist.is_main:
        write_config(run, config, samples, command, unlabelled=[r.filename for r in pool])
    distributed.barrier(dist)
    budget = _Budget(None if config.time_budget_min is None else 60.0 * config.time_budget_min)
    start_from = config.warm_start
    cache: dict[str, FocusedStack] = {}  # every stack's epoch-invariant input, read once for all folds and stages
    if pool and start_from is None:
        start_from = _train_teacher(run, config, store_path, samples, budget, device, dist, command, cache)
    if start_from:
        folds = warm_folds(start_from, [s.filename for s in samples], config.folds)
    else:
        folds = assign_folds([s.label for s in samples], [s.project_id for s in samples], config.folds, config.seed)
    extra = _pseudo_samples(run, config, start_from, pool, store_path, budget, device, dist) if pool else {}
    _train_folds(run, config, store_path, samples, folds, budget, device, dist, start_from, extra, cache)
    summary = finish_run(run, config, samples, command) if dist.is_main else {}
    distributed.barrier(dist)
    distributed.shutdown(dist)
    return summary


def _train_folds(run: RunDir, config: TrainConfig, store_path: str | Path, samples: list[TrainSample],
                 folds: np.ndarray, budget: _Budget, device: torch.device, dist: distributed.DistInfo,
                 start_from: str | None, extra: dict[int, list[TrainSample]], cache: dict[str, FocusedStack]) -> None:
    """Train every fold not finished yet (a finished fold's seconds count against ``budget``)."""
    bar = tqdm(total=config.folds, desc="folds", unit="fold", disable=None if dist.is_main else True)  # a terminal only
    for fold in range(config.folds):
        if run.fold_oof(fold).exists():
            budget.spent += float(pd.read_csv(run.fold_oof(fold))["fold_seconds"].iloc[0])
        else:
            budget.spent += _train_fold(run, config, store_path, samples, folds, fold,
                                        budget.for_fold(fold, config.folds), device, dist, start_from,
                                        extra.get(fold, []), cache)
        bar.update(1)
    bar.close()


def _train_teacher(run: RunDir, config: TrainConfig, store_path: str | Path, samples: list[TrainSample],
                   budget: _Budget, device: torch.device, dist: distributed.DistInfo, command: str,
                   cache: dict[str, FocusedStack]) -> str:
    """Train (or finish) the first stage on the labelled stacks alone in ``RUN_DIR/teacher``, with
    ``teacher_share`` of the time budget; its seconds count against ``budget``. Returns its directory."""
    teacher = RunDir(run.root / TEACHER_DIR)
    minutes = None if config.time_budget_min is None else config.teacher_share * config.time_budget_min
    stage = dataclasses.replace(config, unlabelled="off", time_budget_min=minutes)
    if dist.is_main:
        write_config(teacher, stage, samples, command)
    distributed.barrier(dist)
    own = _Budget(None if minutes is None else 60.0 * minutes)
    folds = assign_folds([s.label for s in samples], [s.project_id for s in samples], stage.folds, stage.seed)
    log.info("unlabelled stacks: training the teacher first (%s)", teacher.root)
    _train_folds(teacher, stage, store_path, samples, folds, own, device, dist, None, {}, cache)
    budget.spent += own.spent
    if dist.is_main and not teacher.is_complete():
        finish_run(teacher, stage, samples, command)
    distributed.barrier(dist)
    return str(teacher.root)


def _pseudo_samples(run: RunDir, config: TrainConfig, teacher: str, pool: list[StackRecord], store_path: str | Path,
                    budget: _Budget, device: torch.device, dist: distributed.DistInfo) -> dict[int, list[TrainSample]]:
    """Each fold's unlabelled stacks with the teacher's targets (scored once, on the main process)."""
    tic = time.monotonic()
    scoring = {"batch_size": config.batch_size, "workers": config.workers, "device": device}
    if dist.is_main:
        pseudo_labels(run, teacher, pool, store_path, config.folds, **scoring)
    distributed.barrier(dist)
    frame = pseudo_labels(run, teacher, pool, store_path, config.folds, **scoring)
    budget.spent += time.monotonic() - tic
    teacher_run = RunDir(teacher)
    threshold = float(teacher_run.read_json(teacher_run.threshold)["threshold"])
    return {fold: fold_samples(frame, pool, fold, threshold) for fold in range(config.folds)}


def _loader(dataset, batch_size: int, workers: int, device: torch.device, sampler=None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=device.type == "cuda",
                      collate_fn=pad_collate, worker_init_fn=_reseed_worker if workers else None,
                      drop_last=sampler is not None and len(sampler) > batch_size)


def _reseed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed([*info.dataset.epoch_seed, worker_id])


def _train_fold(run: RunDir, config: TrainConfig, store_path: str | Path, samples: list[TrainSample],
                folds: np.ndarray, fold: int, budget_s: float | None, device: torch.device, dist: distributed.DistInfo,
                start_from: str | None, extra: list[TrainSample], cache: dict[str, FocusedStack]) -> float:
    """Train one fold (resuming from ``checkpoint.pth`` if it is this fold's); returns seconds spent.

    ``start_from``: a finished run whose same fold's last snapshot is the initial weights;
    ``extra``: unlabelled stacks this fold also trains on (:mod:`training.pseudo`).
    """
    spec = config.input_spec()
    train_idx, val_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    train_samples = [samples[i] for i in train_idx] + extra
    train_set = make_dataset(train_samples, store_path, spec, train=True, elastic_prob=config.elastic_prob,
                             cache=cache)
    val_set = make_dataset([samples[i] for i in val_idx], store_path, spec, train=False, cache=cache)
    val_labels = np.array([samples[i].label for i in val_idx])
    sampler = BalancedSampler([s.label for s in train_samples], config.stalled_share,
                              seed=config.seed * 1000 + fold, rank=dist.rank, world_size=dist.world_size)
    loader = _loader(train_set, config.batch_size, config.workers, device, sampler)
    val_loader = _loader(val_set, config.batch_size, config.workers, device)

    torch.manual_seed(config.seed * 1000 + fold)
    init = fold_snapshot(start_from, fold) if start_from else config.init_checkpoint
    model = create_model(config.arch, checkpoint=init, in_channels=spec.channels, outline_pool=config.outline_pool,
                         **config.model_kwargs).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    steps = len(loader)
    epochs = config.planned_epochs()
    optimiser, scheduler = make_optimiser(model, config.lr, config.weight_decay,
                                          round(config.warmup_epochs * steps), epochs * steps)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    start, planned, spent = 0, epochs, 0.0
    ckpt = load_checkpoint(run.checkpoint)
    if ckpt is not None and ckpt["fold"] == fold:
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start, planned, spent = ckpt["epoch"] + 1, ckpt["planned_epochs"], ckpt["fold_seconds"]
        log.info("fold %d: resuming after epoch %d", fold, ckpt["epoch"])
    if dist.is_main:
        trim_metrics(run, fold, start)
    net = model
    if dist.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = make_loss(config.loss, config.focal_gamma)

    clock = None if budget_s is None else StepClock(
        scheduler.lr_lambdas[0], time.monotonic() + budget_s - spent - OOF_RESERVE * budget_s,
        sync=lambda values: distributed.broadcast_ints(values, dist))
    epoch = start
    while epoch < planned:
        tic = time.monotonic()
        sampler.set_epoch(epoch)
        train_set.epoch_seed = [config.seed, fold, epoch, dist.rank]
        train_set.reseed([*train_set.epoch_seed, 0])
        loss, complete = train_one_epoch(
            net, loader, loss_fn, optimiser, scheduler, scaler, device, desc=f"fold {fold} epoch {_of(epoch, planned)}",
            show=dist.is_main, should_stop=clock)
        report = {}
        if dist.is_main:
            report = score_report(val_labels, score_loader([model], val_loader, 1, device)[:, 0])
        spent += time.monotonic() - tic
        fits = -(-scheduler.lr_lambdas[0].total // steps)  # epochs the (possibly shortened) schedule spans
        # the clock's schedule may grow back when the machine gets faster, up to the configured cap
        planned = max(epoch + 1, min(epochs, fits)) if complete else epoch + 1
        if dist.is_main:  # metrics, snapshot, then checkpoint: a kill in between is undone by the resume
            append_metrics(run, {"fold": fold, "epoch": epoch + 1, "lr": scheduler.get_last_lr()[0],
                                 "train_loss": loss, "val_loss": report["loss"], "auc": report["auc"],
                                 "mcc": report["mcc"], "threshold": report["threshold"],
                                 "sensitivity": report["sensitivity"], "specificity": report["specificity"],
                                 "seconds": spent})
            if epoch >= planned - config.snapshots:
                torch.save(model.state_dict(), _mkparent(run.snapshot(fold, epoch)))
                for early in run.snapshots(fold)[:-config.snapshots]:  # saved before the schedule grew
                    early.unlink()
            save_checkpoint(run.checkpoint, {
                "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "fold": fold, "planned_epochs": planned, "fold_seconds": spent, "rng": rng_state(),
                "args": config.as_dict()})
            tqdm.write(f"fold {fold} epoch {_of(epoch, planned)}: loss {loss:.4f} val AUC {report['auc']:.3f} "
                       f"MCC {report['mcc']:.3f} ({spent:.0f} s)")
        epoch += 1
    distributed.barrier(dist)
    if dist.is_main:
        spent += _write_fold_oof(run, config, [samples[i] for i in val_idx], store_path, fold, spent, device)
    distributed.barrier(dist)
    return spent


def _of(epoch: int, planned: int) -> str:
    """``"3/12"``, or ``"3"`` while the time budget has not yet fixed the epoch count."""
    return f"{epoch + 1}" if planned >= UNCAPPED else f"{epoch + 1}/{planned}"


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _write_fold_oof(run: RunDir, config: TrainConfig, val_samples: list[TrainSample], store_path: str | Path,
                    fold: int, spent: float, device: torch.device) -> float:
    """Score the held-out fold with the fold's snapshots (and TTA) as ``predict`` would; write ``fold<k>/oof.csv``."""
    tic = time.monotonic()
    members = [load_member(run.read_json(run.config), path, device) for path in run.snapshots(fold)]
    scores = score_keys(members, store_path, [s.key for s in val_samples], config.input_spec(), n_views=config.tta,
                        batch_size=config.batch_size, workers=config.workers, device=device)
    seconds = time.monotonic() - tic
    frame = pd.DataFrame({"filename": [s.filename for s in val_samples], "fold": fold,
                          "label": [s.label for s in val_samples], "target": [s.target for s in val_samples],
                          "tier1": [s.tier1 for s in val_samples], "probability": scores.mean(axis=1),
                          "spread": scores.std(axis=1), "fold_seconds": spent + seconds})
    tmp = run.fold_oof(fold).with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(run.fold_oof(fold))
    return seconds
