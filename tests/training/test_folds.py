"""training.folds: stratified, grouped K-fold splits."""

from __future__ import annotations

import numpy as np
import pytest

from training.folds import assign_folds


def _data(n=600, projects=12, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.array([f"p{i}" for i in rng.integers(0, projects, n)])
    labels = (rng.random(n) < 0.2).astype(int)
    return labels, groups


def test_no_project_in_two_folds():
    labels, groups = _data()
    folds = assign_folds(labels, groups, 5, seed=1)
    assert set(folds) == set(range(5))
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1


def test_folds_are_stratified():
    labels, groups = _data(n=2000, projects=40)
    folds = assign_folds(labels, groups, 4)
    shares = [labels[folds == k].mean() for k in range(4)]
    assert max(shares) - min(shares) < 0.06


def test_few_projects_fall_back_to_stratified_only(caplog):
    labels, groups = _data(projects=2)
    folds = assign_folds(labels, groups, 3)
    assert set(folds) == {0, 1, 2}
    assert "not grouped by project" in caplog.text


@pytest.mark.parametrize(("labels", "k", "message"), [
    ([0, 1, 0, 1], 1, "at least 2 folds"),
    ([0, 0, 0, 1], 2, "rarer class has 1"),
])
def test_impossible_splits_are_refused(labels, k, message):
    with pytest.raises(ValueError, match=message):
        assign_folds(labels, [f"p{i}" for i in range(len(labels))], k)
