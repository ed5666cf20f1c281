"""Balanced sampling: a configurable share of stalled stacks per epoch (the 2nd place used 1 : 3)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

log = logging.getLogger(__name__)


class BalancedSampler(Sampler[int]):
    """Draw indices with replacement so that a fraction ``stalled_share`` of them are stalled.

    Each draw first picks the class (stalled with probability ``stalled_share``), then a stack of
    that class uniformly. Under DDP every rank draws the same sequence from ``(seed, epoch)`` and
    keeps every ``world_size``-th index, so ranks see disjoint draws without communicating.

    Parameters
    ----------
    labels
        Binary label (1 = stalled) per dataset index.
    stalled_share
        Target share of stalled draws; ``None`` keeps the natural share (a plain shuffle).
    num_samples
        Draws per epoch over all ranks (default: the dataset size).
    seed, rank, world_size
        Reproducibility and DDP sharding.
    """

    def __init__(self, labels: Sequence[int], stalled_share: float | None = 0.25,
                 num_samples: int | None = None, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.labels = np.asarray(labels, dtype=int)
        if stalled_share is not None and not 0.0 < stalled_share < 1.0:
            raise ValueError(f"stalled_share must be in (0, 1), got {stalled_share}")
        if stalled_share is not None and self.labels.min(initial=0) == self.labels.max(initial=0):
            log.warning("only one class among %d stacks: sampling without balancing", len(self.labels))
            stalled_share = None
        self.stalled_share = stalled_share
        self.num_samples = num_samples or len(self.labels)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the draws of ``epoch`` (call before iterating, as with DistributedSampler)."""
        self.epoch = epoch

    def _draw(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        total = self.num_samples + (-self.num_samples) % self.world_size
        if self.stalled_share is None:
            reps = -(-total // len(self.labels))
            return np.concatenate([rng.permutation(len(self.labels)) for _ in range(reps)])[:total]
        pos, neg = np.flatnonzero(self.labels == 1), np.flatnonzero(self.labels != 1)
        stalled = rng.random(total) < self.stalled_share
        return np.where(stalled, rng.choice(pos, total), rng.choice(neg, total))

    def __iter__(self) -> Iterator[int]:
        return iter(self._draw()[self.rank::self.world_size].tolist())

    def __len__(self) -> int:
        return -(-self.num_samples // self.world_size)
