"""K-fold cross-validation splits: stratified by label, grouped by project (no project in two folds)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

log = logging.getLogger(__name__)


def assign_folds(labels: Sequence[int], groups: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold index (0 … n_folds-1) per stack, from scikit-learn's ``StratifiedGroupKFold``.

    Grouping by ``project_id`` keeps a project's stacks (same mouse, same imaging session and
    look) in one fold, so out-of-fold scores measure generalisation to new projects. With fewer
    projects than folds no grouped split exists; then the split is only stratified, with a warning.

    Raises
    ------
    ValueError
        If ``n_folds < 2`` or a class has fewer stacks than folds.
    """
    labels, groups = np.asarray(labels, dtype=int), np.asarray(groups)
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds for out-of-fold predictions, got {n_folds}")
    smallest = np.bincount(labels, minlength=2).min()
    if smallest < n_folds:
        raise ValueError(f"{n_folds} folds need at least {n_folds} stacks of each class; "
                         f"the rarer class has {smallest}")
    if len(np.unique(groups)) >= n_folds:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(labels)), labels, groups)
    else:
        log.warning("%d projects < %d folds: folds are stratified but not grouped by project",
                    len(np.unique(groups)), n_folds)
        splits = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    folds = np.full(len(labels), -1)
    for k, (_, val) in enumerate(splits):
        folds[val] = k
    return folds
