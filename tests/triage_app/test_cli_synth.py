"""``stalltriage synth``: writes the data set, prints a summary, refuses bad options clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from triage_app.cli import main


def test_synth_writes_the_data_set_and_a_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["synth", str(out), "--n-train", "4", "--n-test", "2", "--seed", "3", "--workers", "1",
                 "--stall-rate", "0.5", "--profile", "tiny"])
    assert code == 0
    summary = capsys.readouterr().out
    stalled = int(pd.read_csv(out / "train_labels.csv").stalled.sum())
    assert f"wrote 4 train ({stalled} stalled) and 2 test stacks to {out}" in summary
    assert len(list((out / "train").glob("*.mp4"))) == 4 and len(list((out / "test").glob("*.mp4"))) == 2
    assert len(pd.read_csv(out / "test_metadata.csv")) == 2


def test_synth_shows_a_progress_bar(tmp_path):
    result = subprocess.run([sys.executable, "-m", "triage_app.cli", "synth", str(tmp_path / "d"), "--n-train", "2",
                             "--n-test", "1", "--profile", "tiny", "--workers", "2"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "synth: 100%" in result.stderr and "3/3" in result.stderr


@pytest.mark.parametrize("options, message", [
    (["--stall-rate", "1.5"], "error: stall_rate must be in [0, 1], got 1.5"),
    (["--n-train", "-1"], "error: n_train and n_test must be >= 0, got -1 and 50"),
    (["--workers", "0"], "error: workers must be >= 1, got 0"),
])
def test_synth_refuses_bad_options(tmp_path, capsys, options, message):
    assert main(["synth", str(tmp_path / "x"), *options]) == 2
    assert message in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


def test_synth_names_an_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["synth", str(blocker / "out"), "--n-train", "1", "--n-test", "0", "--profile", "tiny"]) == 1
    assert f"cannot write to {blocker / 'out'}" in capsys.readouterr().out
