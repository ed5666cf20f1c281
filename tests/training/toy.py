"""Tiny learnable stacks written straight into a VolumeStore (no video decoding), for training tests.

A stalled stack holds a dark blob that stays put through depth; a flowing one has dark blobs at
new random places in every slice: the same cue as the real data, in miniature.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from core.labels.records import StackRecord
from core.video.store import VolumeStore, key_for


def toy_volume(rng: np.random.Generator, stalled: bool, depth: int, size: int = 20) -> np.ndarray:
    """One ``uint8 (depth, size, size)`` stack: bright lumen, dark blobs static or flickering."""
    yy, xx = np.mgrid[:size, :size]
    volume = np.empty((depth, size, size), np.uint8)
    cy, cx = rng.uniform(6, size - 6, 2)
    for z in range(depth):
        if not stalled:
            cy, cx = rng.uniform(6, size - 6, 2)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 9
        image = 180 + rng.normal(0, 20, (size, size))
        image[blob] = 40
        volume[z] = np.clip(image, 0, 255)
    return volume


def write_toy_store(store_path: Path, n: int, *, seed: int = 0, split: str = "train", n_projects: int = 4,
                    stall_rate: float = 0.3, depths: tuple[int, int] = (6, 24), prefix: str = "") -> list[StackRecord]:
    """Write ``n`` toy stacks to the store at ``store_path``; return their records (labels known)."""
    rng = np.random.default_rng(seed)
    records = []
    with VolumeStore(store_path) as store:
        for i in range(n):
            stalled = bool(rng.random() < stall_rate) if i >= 2 else bool(i)  # both classes always present
            filename = f"{prefix}{split}{seed}_{i:04d}.mp4"
            store.put(key_for(filename), toy_volume(rng, stalled, int(rng.integers(*depths))))
            records.append(StackRecord(filename=filename, key=key_for(filename), project_id=f"p{i % n_projects}",
                                       split=split, label=int(stalled), crowd_score=0.9 if stalled else 0.1,
                                       tier1=True))
    return records


# A config small enough that an epoch takes a fraction of a second on one core.
TINY = {"folds": 2, "epochs": 3, "size": 16, "max_depth": 16, "batch_size": 8,
        "arch": "plain3d", "model_kwargs": {"width": 6}, "device": "cpu"}


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """(store path, records JSON path, records): 48 training and 12 test toy stacks."""
    root = tmp_path_factory.mktemp("toy")
    records = write_toy_store(root / "store", 48) + write_toy_store(root / "store", 12, seed=1, split="test")
    path = root / "records.json"
    path.write_text(json.dumps([dataclasses.asdict(r) for r in records]))
    return root / "store", path, records
