"""Synthetic Clog Loss data sets: H.264 stacks plus competition-format CSVs.

``generate(out_dir, n_train, n_test, seed)`` writes::

    OUT/train/*.mp4, OUT/test/*.mp4
    OUT/train_metadata.csv   filename,url,project_id,num_frames,crowd_score,tier1,micro,nano
    OUT/train_labels.csv     filename,stalled
    OUT/test_metadata.csv    filename,url,project_id,num_frames
    OUT/test_labels.csv      filename,stalled   (the answers for test; training never reads it)

Each stack draws from its own ``numpy.random.Generator`` seeded by ``(seed, split, index)``, so a
stack is the same whatever else is generated. The label is drawn independently of the project,
size, depth and appearance: only the cells' behaviour along depth (see :mod:`core.synth.render`)
tells stalled from flowing. Stalls are 30 % of stacks by default (like the competition's
"micro" subset) rather than the full data's ~1 %, so that a small demo set has stalls to learn.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.labels.competition import CROWD_COLUMNS, LABEL_COLUMNS, METADATA_COLUMNS, SPLITS
from core.synth.profiles import PROFILES, crowd, difficulty, make_project, sample_spec
from core.synth.render import StackSpec, render_stack
from core.video.mp4 import write_mp4

log = logging.getLogger(__name__)

URL_PREFIX = "s3://drivendata-competition-clog-loss"
_FILENAME_SLOTS = 900_000
_FILENAME_STEP = 7_919  # prime, coprime with the slot count: index → filename is one-to-one


@functools.lru_cache(maxsize=64)
def _filename_offset(seed: int) -> int:
    return int(np.random.default_rng([seed, 7]).integers(_FILENAME_SLOTS))


def stack_filename(seed: int, split: str, index: int) -> str:
    """Competition-style six-digit filename, unique per ``(seed, split, index)`` for < 450,000 per split."""
    slot = 2 * index + SPLITS.index(split)
    if slot >= _FILENAME_SLOTS:
        raise ValueError(f"index {index} too large: at most {_FILENAME_SLOTS // 2} stacks per split")
    return f"{100_000 + (slot * _FILENAME_STEP + _filename_offset(seed)) % _FILENAME_SLOTS}.mp4"


@dataclass(frozen=True)
class StackJob:
    """One stack to generate: identity, label, metadata and its drawing spec.

    ``hard`` names the hard cases and nuisances the stack holds (see
    :data:`core.synth.profiles.DIFFICULTY`) and ``difficulty`` sums them up (0 clear … 1).
    """

    filename: str
    split: str
    project_id: int
    stalled: bool
    hard: tuple[str, ...]
    difficulty: float
    spec: StackSpec
    crowd_score: float
    tier1: bool
    micro: bool
    nano: bool


def make_job(seed: int, split: str, index: int, *, stall_rate: float = 0.3, n_projects: int = 12,
             profile: str = "realistic") -> StackJob:
    """Everything about stack ``index`` of ``split``, drawn from its own generator."""
    size = PROFILES[profile]
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    project = make_project(seed, int(rng.integers(n_projects)) + 1, size)
    stalled = bool(rng.random() < stall_rate)
    spec, hard = sample_spec(rng, (seed, SPLITS.index(split), index, 1), project, size, stalled)
    level = difficulty(hard)
    score, tier1 = crowd(rng, stalled, level)
    keep_flowing = min(1.0, (0.7 / 0.3) * stall_rate / max(1.0 - stall_rate, 1e-9))
    micro = bool(stalled or rng.random() < keep_flowing)
    return StackJob(filename=stack_filename(seed, split, index), split=split, project_id=project.project_id,
                    stalled=stalled, hard=hard, difficulty=level, spec=spec, crowd_score=score, tier1=tier1,
                    micro=micro, nano=bool(micro and rng.random() < 0.5))


def write_job(job: StackJob, out_dir: Path) -> dict:
    """Render and write one stack; returns its metadata row."""
    path = Path(out_dir) / job.split / job.filename
    write_mp4(path, render_stack(job.spec), preset="ultrafast")  # x264 CRF 10: no stray orange
    return {"filename": job.filename, "url": f"{URL_PREFIX}/{job.split}/{job.filename}",
            "project_id": job.project_id, "num_frames": job.spec.depth, "crowd_score": job.crowd_score,
            "tier1": job.tier1, "micro": job.micro, "nano": job.nano, "stalled": int(job.stalled),
            "split": job.split}


def _write_job_star(args: tuple[StackJob, Path]) -> dict:
    import cv2

    cv2.setNumThreads(1)
    return write_job(*args)


def _write_csvs(rows: list[dict], out_dir: Path) -> None:
    """The four CSVs in the columns the competition reader expects (:mod:`core.labels.competition`)."""
    train_metadata, test_metadata = [*METADATA_COLUMNS, *CROWD_COLUMNS], list(METADATA_COLUMNS)
    labels = list(LABEL_COLUMNS)
    df = pd.DataFrame(rows, columns=[*train_metadata, "stalled", "split"])
    train, test = df[df.split == "train"], df[df.split == "test"]
    train[train_metadata].to_csv(out_dir / "train_metadata.csv", index=False)
    train[labels].to_csv(out_dir / "train_labels.csv", index=False)
    test[test_metadata].to_csv(out_dir / "test_metadata.csv", index=False)
    test[labels].to_csv(out_dir / "test_labels.csv", index=False)


def generate(out_dir: str | Path, n_train: int = 200, n_test: int = 50, seed: int = 0, *,
             stall_rate: float = 0.3, test_stall_rate: float | None = None, n_projects: int = 12,
             profile: str = "realistic", workers: int | None = None, progress: bool = True) -> Path:
    """Write a synthetic data set in the competition format.

    Parameters
    ----------
    out_dir
        Output directory; ``train/`` and ``test/`` are created inside it.
    n_train, n_test
        Number of stacks per split.
    seed
        Data set seed; stack ``i`` of a split is the same for any ``n_train``/``n_test``.
    stall_rate
        Fraction of stalled training stacks (0.3 like the competition's "micro" subset; the full
        data has ~0.01, too few for a small demo).
    test_stall_rate
        Fraction of stalled test stacks; default: ``stall_rate``.
    n_projects
        Number of projects, each with its own appearance.
    profile
        ``"realistic"`` (Stall Catchers-like sizes, hard cases and nuisances) or ``"tiny"``
        (small, fast and mostly clear, for tests); see :data:`core.synth.profiles.PROFILES`.
    workers
        Processes rendering and encoding; default: all CPU cores.
    progress
        Show a tqdm progress bar when stderr is a terminal (never in a log file or a pipe).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    test_stall_rate = stall_rate if test_stall_rate is None else test_stall_rate
    for name, rate in (("stall_rate", stall_rate), ("test_stall_rate", test_stall_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {rate}")
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train} and {n_test}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    out_dir = Path(out_dir)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    jobs = [make_job(seed, split, i, stall_rate=rate, n_projects=n_projects, profile=profile)
            for split, n, rate in (("train", n_train, stall_rate), ("test", n_test, test_stall_rate))
            for i in range(n)]
    workers = workers or os.cpu_count() or 1
    args = [(job, out_dir) for job in jobs]
    bar = tqdm(total=len(jobs), desc="synth", unit="stack", disable=None if progress else True)  # None: a terminal only
    if workers == 1:
        rows = []
        for a in args:
            rows.append(write_job(*a))
            bar.update()
    else:
        # a fresh fork server, not a fork of the caller: a forked child inherits OpenCV's thread
        # pool without its threads and hangs in cv2.setNumThreads (seen in the test suite)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            rows = []
            for row in pool.map(_write_job_star, args, chunksize=2):
                rows.append(row)
                bar.update()
    bar.close()
    _write_csvs(rows, out_dir)
    log.info("wrote %d train and %d test stacks to %s", n_train, n_test, out_dir)
    return out_dir
