"""Warm-starting a cross-fitted run from an earlier one (``stalltriage retrain``), honestly.

Each fold of the new run starts from the same fold's last snapshot of the earlier run, and every
stack keeps the fold that held it out before: a stack the earlier run trained on stays in its
old fold, any other stack goes to the fold that scored it (``core.model.predict.crossfit_fold``). So
fold k's members, old and new, never trained on a stack of fold k, and the new run's
out-of-fold scores stay out of sample (a fresh fold assignment would hand fold k stacks its
warm-started weights had already learned).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.model.predict import crossfit_fold
from core.model.rundir import RunDir
from training.config import TrainConfig

# Options added after runs were made, with the value that reproduces those runs' inputs and network.
PREDATING = {"focus_depth": False, "outline_pool": False, "vessel": False}


def continuation_config(run_dir: str | Path, **overrides) -> TrainConfig:
    """The options of a run that continues the finished run ``run_dir``: its own options (an option it
    predates keeps the behaviour it was trained with), warm-started from it at half its learning
    rate, with ``overrides`` on top (``None`` values are ignored)."""
    run = RunDir(run_dir)
    old = run.read_json(run.config)
    options = PREDATING | {k: v for k, v in old.items() if k in TrainConfig.__dataclass_fields__}
    options |= {"init_checkpoint": None, "warm_start": str(Path(run_dir).resolve()), "lr": options["lr"] / 2}
    return TrainConfig(**options | {k: v for k, v in overrides.items() if v is not None})


def fold_snapshot(run_dir: str | Path, fold: int) -> Path:
    """The last snapshot of ``fold`` in the finished run ``run_dir`` (the weights a warm start begins from).

    Raises
    ------
    FileNotFoundError
        When the fold has no snapshot.
    """
    run = RunDir(run_dir)
    snapshots = run.snapshots(fold)
    if not snapshots:
        raise FileNotFoundError(f"{run.fold_dir(fold)}: no snapshot_e*.pt to warm-start fold {fold} from")
    return snapshots[-1]


def warm_folds(run_dir: str | Path, filenames: Sequence[str], folds: int) -> np.ndarray:
    """Fold of each stack in the new run: its old out-of-fold fold if the earlier run trained on it,
    else the fold that scored it as a new or held-out stack.

    Raises
    ------
    ValueError
        When the earlier run had another number of folds.
    """
    run = RunDir(run_dir)
    old_folds = run.read_json(run.config).get("folds")
    if old_folds != folds:
        raise ValueError(f"{run.root}: has {old_folds} folds; a warm start keeps them (asked for {folds})")
    oof = pd.read_csv(run.oof, dtype={"filename": str})
    held_out_by = dict(zip(oof["filename"], oof["fold"].astype(int)))
    return np.array([held_out_by.get(name, crossfit_fold(name, folds)) for name in filenames], dtype=int)
