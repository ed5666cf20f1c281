"""kill -9 during training, then the same command: it continues from the checkpoint, not from scratch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from core.model.rundir import RunDir
from tests.training.toy import TINY

ROOT = Path(__file__).resolve().parents[2]


def _command(toy_data, run_dir: Path, config: dict) -> list[str]:
    store, records_json, _ = toy_data
    return [sys.executable, "-m", "tests.training.run_toy", str(records_json), str(store), str(run_dir),
            json.dumps(config)]


@pytest.mark.slow
def test_resume_after_kill_9(toy_data, tmp_path):
    run = RunDir(tmp_path / "run")
    config = TINY | {"epochs": 4}
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_command(toy_data, run.root, config), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not run.checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    ckpt = torch.load(run.checkpoint, weights_only=True)
    killed_at = (ckpt["fold"], ckpt["epoch"])
    assert not run.is_complete()
    before = pd.read_csv(run.metrics)

    rerun = subprocess.run(_command(toy_data, run.root, config), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"fold {killed_at[0]}: resuming after epoch {killed_at[1]}" in rerun.stderr
    assert run.is_complete()
    metrics = pd.read_csv(run.metrics)
    # one row per (fold, epoch), epochs counted 1, 2, ... without gaps or repeats
    for _, rows in metrics.groupby("fold"):
        assert rows["epoch"].tolist() == list(range(1, len(rows) + 1))
    # the epochs finished before the kill were kept, not retrained
    kept = before[(before["fold"] < killed_at[0]) | (before["epoch"] <= killed_at[1] + 1)]
    pd.testing.assert_frame_equal(metrics.iloc[:len(kept)].reset_index(drop=True), kept.reset_index(drop=True))


def test_other_options_in_the_same_run_dir_are_refused(toy_data, tmp_path):
    from training.config import TrainConfig
    from training.cv import train_cv

    store, _, records = toy_data
    run_dir = tmp_path / "run"
    train_cv(records, store, run_dir, TrainConfig(**(TINY | {"epochs": 1, "snapshots": 1})))
    with pytest.raises(ValueError, match="differs in lr"):
        train_cv(records, store, run_dir, TrainConfig(**(TINY | {"epochs": 1, "snapshots": 1, "lr": 0.1})))
