"""training.sampler: the stalled share per epoch, determinism and DDP sharding."""

from __future__ import annotations

import numpy as np
import pytest

from training.sampler import BalancedSampler

LABELS = [1] * 50 + [0] * 950  # 5 % stalled, like a rare class


@pytest.mark.parametrize("share", [0.25, 0.5, 0.1])
def test_stalled_share_is_what_was_asked(share):
    sampler = BalancedSampler(LABELS, share, num_samples=20_000, seed=3)
    drawn = np.asarray(LABELS)[list(sampler)]
    assert len(drawn) == 20_000
    assert abs(drawn.mean() - share) < 0.015


def test_natural_share_without_balancing():
    sampler = BalancedSampler(LABELS, None, seed=0)
    assert sorted(sampler) == list(range(len(LABELS)))  # one shuffled pass over every stack


def test_epochs_differ_and_are_reproducible():
    a, b = BalancedSampler(LABELS, 0.25, seed=1), BalancedSampler(LABELS, 0.25, seed=1)
    first = list(a)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) != first


def test_ranks_split_one_epoch_without_overlap():
    ranks = [BalancedSampler(LABELS, 0.25, num_samples=1001, seed=2, rank=r, world_size=2) for r in range(2)]
    draws = [list(s) for s in ranks]
    full = BalancedSampler(LABELS, 0.25, num_samples=1002, seed=2)._draw()
    assert len(draws[0]) == len(draws[1]) == len(ranks[0]) == 501
    assert sorted(draws[0] + draws[1]) == sorted(full.tolist())


def test_one_class_falls_back_to_shuffling():
    assert sorted(BalancedSampler([0, 0, 0], 0.25)) == [0, 1, 2]


def test_bad_share_is_refused():
    with pytest.raises(ValueError, match="stalled_share"):
        BalancedSampler(LABELS, 1.5)
