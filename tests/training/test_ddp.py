"""DDP: ``torchrun --nproc_per_node 2`` with gloo on CPU yields a complete run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.model.rundir import RunDir
from tests.training.toy import TINY

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_torchrun_two_processes_gloo(toy_data, tmp_path):
    store, records_json, records = toy_data
    run = RunDir(tmp_path / "run")
    config = TINY | {"epochs": 2, "snapshots": 1}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "tests.training.run_toy", str(records_json), str(store), str(run.root), json.dumps(config)]
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run.is_complete() and run.model_card.exists()
    assert [len(run.snapshots(k)) for k in range(2)] == [1, 1]
    metrics = pd.read_csv(run.metrics)
    assert len(metrics) == 4  # rank 0 alone writes: 2 folds × 2 epochs, no duplicates
    oof = pd.read_csv(run.oof)
    assert sorted(oof["filename"]) == sorted(r.filename for r in records if r.split == "train")
