"""Learning from the stacks nobody has answered: self-training on a teacher's scores, kept out of sample.

A lab always holds many more ingested stacks without an answer (above all the new stacks it wants
triaged) than labelled ones. ``--unlabelled pseudo`` trains each fold's student on its labelled
stacks plus these stacks, with the teacher's probability as a soft target (self-training in the
manner of Noisy Student, Xie et al. 2020: the student sees the stacks through the training
augmentation the teacher did not have when it scored them).

The promise needs every score the policy reads to come from a member that never trained on the
stack, pseudo-label included. So the unlabelled stacks are split across the folds like the
labelled ones, by the fold that will score them (:func:`core.model.predict.crossfit_fold`): fold k's
student never trains on a stack fold k scores, and its pseudo-labels come from the teacher's fold
k, which never trained on fold k's labelled stacks either. A labelled stack's out-of-fold score
and a new stack's score thus come from the same kind of predictor, and the reference the policy
is tuned on still predicts what it decides.

The teacher is the run a warm start continues (``stalltriage retrain``), or else a first stage
trained on the labelled stacks alone in ``RUN_DIR/teacher`` with a share of the time budget; each
student fold starts from its teacher fold's last snapshot.

Written here rather than taken from a library: the published self-training code (Noisy Student,
USB, TorchSSL) is built around 2D image classification loops; the part specific to us is the
cross-fitting, which is the whole of this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from core.labels.records import StackRecord
from core.model.predict import crossfit_fold, load_member, run_spec, score_keys
from core.model.rundir import RunDir, write_atomic
from training.dataset import TrainSample

PSEUDO_SOURCE = "pseudo"
UNLABELLED_MODES = ("off", "pseudo")
TEACHER_DIR = "teacher"
PSEUDO_FILE = "pseudo_labels.csv"
COLUMNS = ["filename", "fold", "probability"]


def unlabelled_pool(records: Sequence[StackRecord], samples: Sequence[TrainSample]) -> list[StackRecord]:
    """The stacks among ``records`` that are not training stacks: whatever answer they may carry is
    never read, only their images (new stacks, held-out stacks, stacks of other splits)."""
    trained = {s.filename for s in samples}
    return [r for r in records if r.filename not in trained]


def teacher_scores(teacher_dir: str | Path, pool: Sequence[StackRecord], store_path: str | Path, folds: int, *,
                   batch_size: int, workers: int, device: torch.device) -> pd.DataFrame:
    """Each fold's pseudo-labels: the teacher's fold ``j`` scores every pool stack that the student's
    fold ``j`` may train on (those whose scoring fold is not ``j``), without test-time flips.

    Returns
    -------
    pandas.DataFrame
        ``filename, fold, probability``: one row per (stack, fold that trains on it).
    """
    teacher = RunDir(teacher_dir)
    config = teacher.read_json(teacher.config)
    frames = [pd.DataFrame(columns=COLUMNS)]
    for fold in range(folds):
        chosen = [r for r in pool if crossfit_fold(r.filename, folds) != fold]
        if chosen:
            members = [load_member(config, path, device) for path in teacher.snapshots(fold)]
            scores = score_keys(members, store_path, [r.key for r in chosen], run_spec(config), n_views=1,
                                batch_size=batch_size, workers=workers, device=device)
            frames.append(pd.DataFrame({"filename": [r.filename for r in chosen], "fold": fold,
                                        "probability": scores.mean(axis=1)}))
    return pd.concat(frames, ignore_index=True).astype({"fold": int, "probability": float})


def pseudo_labels(run: RunDir, teacher_dir: str | Path, pool: Sequence[StackRecord], store_path: str | Path,
                  folds: int, **scoring) -> pd.DataFrame:
    """:func:`teacher_scores`, computed once per run and kept in ``RUN_DIR/pseudo_labels.csv`` (a resumed
    run trains on the same targets)."""
    path = run.root / PSEUDO_FILE
    if path.exists():
        return pd.read_csv(path, dtype={"filename": str})
    frame = teacher_scores(teacher_dir, pool, store_path, folds, **scoring)
    write_atomic(path, frame.to_csv(index=False))
    return frame


def fold_samples(pseudo: pd.DataFrame, pool: Sequence[StackRecord], fold: int, threshold: float) -> list[TrainSample]:
    """The unlabelled stacks fold ``fold`` trains on, each with the teacher's probability as its target
    and, for the balanced sampler, the teacher's decision at its ``threshold`` as its class."""
    record = {r.filename: r for r in pool}
    rows = pseudo.loc[pseudo["fold"] == fold]
    return [TrainSample(name, record[name].key, record[name].project_id, int(p >= threshold), float(p), False,
                        PSEUDO_SOURCE)
            for name, p in zip(rows["filename"], rows["probability"]) if name in record]
