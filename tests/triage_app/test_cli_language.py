"""One command-line language: option values refused by the parser (usage, one line, exit 2) before
anything is opened, a missing folder told apart from a file, and no other library's log lines on
the console unless ``-v``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from triage_app import settings
from triage_app.cli import main

HEADER = "filename,url,project_id,num_frames\n"


@pytest.mark.parametrize("helper, good, bad", [
    (settings.probability, {"0.5": 0.5, "0.99": 0.99}, ["0", "1", "1.5", "-0.1", "nan", "x"]),
    (settings.share, {"0": 0.0, "1": 1.0, "0.3": 0.3}, ["1.01", "-0.5", "nan", ""]),
    (settings.positive_int, {"1": 1, "16": 16}, ["0", "-2", "1.5", "two"]),
    (settings.count, {"0": 0, "7": 7}, ["-1", "0.5"]),
    (settings.positive_number, {"0.5": 0.5, "4": 4.0}, ["0", "-1", "inf", "nan"]),
    (settings.port, {"8501": 8501, "1": 1}, ["0", "65536", "http"]),
])
def test_value_types_accept_the_range_and_refuse_the_rest(helper, good, bad):
    assert {text: helper(text) for text in good} == good
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=r"^must be .*, got "):
            helper(text)


def refused(argv: list[str], capsys) -> str:
    """The parser's error line for ``stalltriage ARGV``, which must exit with code 2."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_ingest_tells_a_missing_folder_from_a_file_and_names_it(tmp_path, capsys):
    csv = tmp_path / "meta.csv"
    csv.write_text(HEADER)
    missing, a_file = tmp_path / "no-such-folder", csv
    assert refused(["ingest", str(missing), "--metadata", str(csv)], capsys) == (
        f"stalltriage ingest: error: argument VIDEO_DIR: {missing}: no such folder")
    assert refused(["ingest", str(a_file), "--metadata", str(csv)], capsys).endswith(f"{a_file}: not a folder")
    assert refused(["ingest", str(missing)], capsys).endswith(f"{missing}: no such folder")  # before --metadata
    assert refused(["ingest", str(tmp_path), "--metadata", str(tmp_path / "gone.csv")], capsys).endswith(
        f"argument --metadata: {tmp_path / 'gone.csv'}: no such file")
    assert refused(["ingest", str(tmp_path), "--metadata", str(csv), "--labels", str(tmp_path)], capsys).endswith(
        f"argument --labels: {tmp_path}: a folder, not a file")


@pytest.mark.parametrize("argv, option", [
    (["ingest", "{tmp}", "--metadata", "{tmp}/meta.csv", "--workers", "0"], "--workers"),
    (["ingest", "{tmp}", "--metadata", "{tmp}/meta.csv", "--batch-size", "-3"], "--batch-size"),
    (["predict", "--model", "{tmp}/run", "--batch-size", "0"], "--batch-size"),
    (["retrain", "--time-budget", "-1"], "--time-budget"),
    (["explain", "1.mp4", "--out", "{tmp}/x.mp4", "--fps", "0"], "--fps"),
    (["app", "--port", "70000"], "--port"),
])
def test_bad_values_are_refused_before_the_database_is_opened(tmp_path, capsys, isolated_data_dir, argv, option):
    (tmp_path / "meta.csv").write_text(HEADER)
    line = refused([part.format(tmp=tmp_path) for part in argv], capsys)
    assert f"error: argument {option}: must be" in line
    assert not isolated_data_dir.exists()


def cli(tmp_path: Path, *argv: str) -> str:
    """``stalltriage ARGV`` in a fresh process (OpenCV and logging start clean); stdout and stderr together."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENCV_")}
    result = subprocess.run([sys.executable, "-m", "triage_app.cli", *argv], capture_output=True, text=True,
                            env={**env, "PYTHONPATH": os.getcwd()}, cwd=tmp_path, timeout=120)
    return result.stdout + result.stderr


def test_an_empty_mp4_and_a_fresh_database_print_only_our_own_lines(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "x.mp4").write_bytes(b"")
    (tmp_path / "meta.csv").write_text(HEADER + "x.mp4,u,P,10\n")
    out = cli(tmp_path, "ingest", "videos", "--metadata", "meta.csv", "--data-dir", "quiet", "--workers", "1")
    assert out.splitlines() == ["videos/x.mp4: empty file",
                                "ingested 0, already stored 0, failed 1 (store: quiet/store)"]
    verbose = cli(tmp_path, "-v", "ingest", "videos", "--metadata", "meta.csv", "--data-dir", "loud", "--workers", "1")
    assert "INFO alembic.runtime.migration: Running upgrade" in verbose
