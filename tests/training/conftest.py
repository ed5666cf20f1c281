"""Toy stacks in a store, shared by the training tests."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.training.toy import write_toy_store

# A config small enough that an epoch takes a fraction of a second on one core.
TINY = {"folds": 2, "epochs": 3, "size": 16, "max_depth": 16, "batch_size": 8,
        "model_kwargs": {"width": 6, "stages": [1, 1, 1]}, "device": "cpu"}


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    """(store path, records JSON path, records): 48 training and 12 test toy stacks."""
    root = tmp_path_factory.mktemp("toy")
    records = write_toy_store(root / "store", 48) + write_toy_store(root / "store", 12, seed=1, split="test")
    path = root / "records.json"
    path.write_text(json.dumps([dataclasses.asdict(r) for r in records]))
    return root / "store", path, records
