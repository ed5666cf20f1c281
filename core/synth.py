"""Synthetic Clog Loss data sets: H.264 stacks plus competition-format CSVs.

``generate(out_dir, n_train, n_test, seed)`` writes::

    OUT/train/*.mp4, OUT/test/*.mp4
    OUT/train_metadata.csv   filename,url,project_id,num_frames,crowd_score,tier1,micro,nano
    OUT/train_labels.csv     filename,stalled
    OUT/test_metadata.csv    filename,url,project_id,num_frames
    OUT/test_labels.csv      filename,stalled   (the answers for test; training never reads it)

Each stack draws from its own ``numpy.random.Generator`` seeded by ``(seed, split, index)``, so a
stack is the same whatever else is generated. The label is drawn independently of the project,
size, depth and appearance: only the cells' behaviour along depth (see :mod:`core.synth_render`)
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

from core.mp4 import write_mp4
from core.synth_render import StackSpec, render_stack

log = logging.getLogger(__name__)

URL_PREFIX = "s3://drivendata-competition-clog-loss"
SPLITS = ("train", "test")
HARD_RATE = 0.13
_FILENAME_SLOTS = 900_000
_FILENAME_STEP = 7_919  # prime, coprime with the slot count: index → filename is one-to-one


@dataclass(frozen=True)
class SizeProfile:
    """Distributions of stack depth, ROI size and context around the ROI (lognormal, clipped),
    and a scale for vessel width so that small ROIs still show several cells."""

    depth_median: float
    depth_sigma: float
    depth_range: tuple[int, int]
    roi_median: float
    roi_sigma: float
    roi_range: tuple[int, int]
    context_range: tuple[int, int]
    frame_range: tuple[int, int]
    radius_scale: float = 1.0


PROFILES = {
    # Competition-like: depth mostly 20–120 (mean ≈ 60, tail capped at 160 for speed),
    # ROI mostly 30–110 px (mean ≈ 67), full frame larger than the ROI.
    "default": SizeProfile(54, 0.42, (16, 160), 64, 0.3, (28, 180), (10, 40), (128, 208)),
    # Small and fast, for tests: the same phenomena at a fraction of the pixels.
    "tiny": SizeProfile(16, 0.2, (12, 24), 36, 0.15, (28, 48), (6, 14), (48, 64), radius_scale=0.6),
}


@dataclass(frozen=True)
class Project:
    """Per-project appearance: microscope settings, dye and animal differ between projects."""

    project_id: int
    tissue_level: float
    tissue_texture: float
    lumen_level: float
    shadow_strength: float
    noise_sigma: float
    vessel_radius: float
    frame_hw: tuple[int, int]
    outline_thickness: int


def make_project(seed: int, project_id: int, profile: SizeProfile) -> Project:
    """Draw the appearance of project ``project_id`` (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 1_000_003, project_id])
    return Project(
        project_id=project_id,
        tissue_level=float(rng.uniform(12, 40)),
        tissue_texture=float(rng.uniform(4, 14)),
        lumen_level=float(rng.uniform(120, 200)),
        shadow_strength=float(rng.uniform(0.65, 0.9)),
        noise_sigma=float(rng.uniform(5, 14)),
        vessel_radius=float(rng.uniform(3.0, 5.0) * profile.radius_scale),
        frame_hw=(int(rng.integers(*profile.frame_range)), int(rng.integers(*profile.frame_range))),
        outline_thickness=int(rng.integers(1, 3)),
    )


@functools.lru_cache(maxsize=64)
def _filename_offset(seed: int) -> int:
    return int(np.random.default_rng([seed, 7]).integers(_FILENAME_SLOTS))


def stack_filename(seed: int, split: str, index: int) -> str:
    """Competition-style six-digit filename, unique per ``(seed, split, index)`` for < 450,000 per split."""
    slot = 2 * index + SPLITS.index(split)
    if slot >= _FILENAME_SLOTS:
        raise ValueError(f"index {index} too large: at most {_FILENAME_SLOTS // 2} stacks per split")
    return f"{100_000 + (slot * _FILENAME_STEP + _filename_offset(seed)) % _FILENAME_SLOTS}.mp4"


def _lognormal(rng: np.random.Generator, median: float, sigma: float, bounds: tuple[int, int]) -> int:
    return int(np.clip(round(median * np.exp(sigma * rng.standard_normal())), *bounds))


def _crowd(rng: np.random.Generator, stalled: bool, hard: bool) -> tuple[float, bool]:
    """Noisy crowd score (fraction saying "stalled") and the tier-1 (high confidence) flag.

    Clear stacks get confident scores on the right side; hard ones land in between; a few (3 %)
    fool the crowd.
    """
    a, b = (2.5, 2.0) if hard else (10.0, 1.2)
    agree = rng.beta(a, b)
    fooled = rng.random() < 0.03
    if fooled:
        agree = 1.0 - agree
    score = round(float(agree if stalled else 1.0 - agree), 4)
    tier1 = bool(not (hard or fooled) and abs(score - 0.5) > 0.35 and rng.random() < 0.85)
    return score, tier1


@dataclass(frozen=True)
class StackJob:
    """One stack to generate: identity, label, metadata and its drawing spec."""

    filename: str
    split: str
    project_id: int
    stalled: bool
    hard: str
    spec: StackSpec
    crowd_score: float
    tier1: bool
    micro: bool
    nano: bool


def _spec(rng: np.random.Generator, render_seed: tuple[int, ...], project: Project, profile: SizeProfile,
          stalled: bool, hard: str) -> StackSpec:
    """Sample sizes and appearance (independent of the label) and apply the hard case."""
    depth = _lognormal(rng, profile.depth_median, profile.depth_sigma, profile.depth_range)
    roi_h = _lognormal(rng, profile.roi_median, profile.roi_sigma, profile.roi_range)
    roi_w = int(np.clip(round(roi_h * np.exp(rng.normal(0, 0.2))), *profile.roi_range))
    ctx = profile.context_range
    frame_h = max(project.frame_hw[0], roi_h + 2 * ctx[0]) + int(rng.integers(*ctx))
    frame_w = max(project.frame_hw[1], roi_w + 2 * ctx[0]) + int(rng.integers(*ctx))
    frame_h, frame_w = frame_h + frame_h % 2, frame_w + frame_w % 2
    roi = (int(rng.integers(ctx[0], frame_h - roi_h - ctx[0] + 1)),
           int(rng.integers(ctx[0], frame_w - roi_w - ctx[0] + 1)), roi_h, roi_w)
    mode = "stall" if stalled else "flow"
    if hard == "slow_or_partial":
        mode = "partial" if stalled else "slow"
    low = hard == "low_contrast"
    return StackSpec(
        render_seed=render_seed, depth=depth, frame_hw=(frame_h, frame_w), roi_yxhw=roi, cell_mode=mode,
        tissue_level=project.tissue_level * rng.uniform(0.85, 1.15),
        tissue_texture=project.tissue_texture * rng.uniform(0.8, 1.2),
        lumen_level=project.lumen_level * rng.uniform(0.85, 1.15) * (rng.uniform(0.3, 0.45) if low else 1.0),
        shadow_strength=project.shadow_strength * (rng.uniform(0.45, 0.65) if low else 1.0),
        noise_sigma=project.noise_sigma * rng.uniform(0.85, 1.15),
        vessel_radius=project.vessel_radius * rng.uniform(0.85, 1.15),
        coverage=float(rng.uniform(0.2, 0.45)),
        target_visible=float(rng.uniform(0.12, 0.2) if hard == "few_slices" else rng.uniform(0.45, 0.85)),
        n_other_vessels=int(rng.integers(1, 5)),
        outline_thickness=project.outline_thickness,
        jitter_px=float(rng.uniform(0.3, 0.8)) if rng.random() < 0.1 else 0.0,
        blackout=bool(rng.random() < 0.08),
    )


def make_job(seed: int, split: str, index: int, *, stall_rate: float = 0.3, n_projects: int = 8,
             profile: str = "default") -> StackJob:
    """Everything about stack ``index`` of ``split``, drawn from its own generator."""
    size = PROFILES[profile]
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    project = make_project(seed, int(rng.integers(n_projects)) + 1, size)
    stalled = bool(rng.random() < stall_rate)
    hard = str(rng.choice(["slow_or_partial", "low_contrast", "few_slices"])) if rng.random() < HARD_RATE else ""
    spec = _spec(rng, (seed, SPLITS.index(split), index, 1), project, size, stalled, hard)
    score, tier1 = _crowd(rng, stalled, bool(hard))
    keep_flowing = min(1.0, (0.7 / 0.3) * stall_rate / max(1.0 - stall_rate, 1e-9))
    micro = bool(stalled or rng.random() < keep_flowing)
    return StackJob(filename=stack_filename(seed, split, index), split=split, project_id=project.project_id,
                    stalled=stalled, hard=hard, spec=spec, crowd_score=score, tier1=tier1,
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


TRAIN_METADATA_COLUMNS = ["filename", "url", "project_id", "num_frames", "crowd_score", "tier1", "micro", "nano"]
TEST_METADATA_COLUMNS = ["filename", "url", "project_id", "num_frames"]
LABEL_COLUMNS = ["filename", "stalled"]


def _write_csvs(rows: list[dict], out_dir: Path) -> None:
    df = pd.DataFrame(rows, columns=[*TRAIN_METADATA_COLUMNS, "stalled", "split"])
    train, test = df[df.split == "train"], df[df.split == "test"]
    train[TRAIN_METADATA_COLUMNS].to_csv(out_dir / "train_metadata.csv", index=False)
    train[LABEL_COLUMNS].to_csv(out_dir / "train_labels.csv", index=False)
    test[TEST_METADATA_COLUMNS].to_csv(out_dir / "test_metadata.csv", index=False)
    test[LABEL_COLUMNS].to_csv(out_dir / "test_labels.csv", index=False)


def generate(out_dir: str | Path, n_train: int = 200, n_test: int = 50, seed: int = 0, *,
             stall_rate: float = 0.3, n_projects: int = 8, profile: str = "default",
             workers: int | None = None, progress: bool = True) -> Path:
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
        Fraction of stalled stacks (0.3 like the competition's "micro" subset; the full data
        has ~0.01, too few for a small demo).
    n_projects
        Number of projects, each with its own appearance.
    profile
        ``"default"`` (competition-like sizes) or ``"tiny"`` (small and fast, for tests).
    workers
        Processes rendering and encoding; default: all CPU cores.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    if not 0.0 <= stall_rate <= 1.0:
        raise ValueError(f"stall_rate must be in [0, 1], got {stall_rate}")
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train} and {n_test}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(PROFILES)}")
    out_dir = Path(out_dir)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    jobs = [make_job(seed, split, i, stall_rate=stall_rate, n_projects=n_projects, profile=profile)
            for split, n in (("train", n_train), ("test", n_test)) for i in range(n)]
    workers = workers or os.cpu_count() or 1
    args = [(job, out_dir) for job in jobs]
    bar = tqdm(total=len(jobs), desc="synth", unit="stack", disable=not progress)
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
