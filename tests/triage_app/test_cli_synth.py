"""``stalltriage synth``: writes the data set, prints a summary, refuses bad options clearly."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios

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


def test_synth_spreads_the_stacks_over_the_projects_asked_for(tmp_path, capsys):
    out = tmp_path / "two"
    assert main(["synth", str(out), "--n-train", "12", "--n-test", "4", "--seed", "1", "--workers", "1",
                 "--profile", "tiny", "--projects", "2"]) == 0
    projects = pd.concat([pd.read_csv(out / f"{split}_metadata.csv") for split in ("train", "test")])["project_id"]
    assert set(projects) == {1, 2}
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "none"), "--projects", "0"])
    assert "--projects" in capsys.readouterr().err


def synth_stderr(tmp_path, *, terminal: bool) -> str:
    """``stalltriage synth`` in a child process, its stderr a terminal (a pseudo-terminal) or a pipe."""
    command = [sys.executable, "-m", "triage_app.cli", "synth", str(tmp_path / "d"), "--n-train", "2",
               "--n-test", "1", "--profile", "tiny", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    if not terminal:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stderr
    controller, terminal_end = pty.openpty()
    fcntl.ioctl(terminal_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a width to draw the bar in
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal_end, env=env) as child:
        os.close(terminal_end)
        assert child.wait(timeout=120) == 0
    chunks = []
    while select.select([controller], [], [], 0.5)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return b"".join(chunks).decode(errors="replace")


def test_synth_shows_a_progress_bar_on_a_terminal_only(tmp_path):
    assert "synth: 100%" in synth_stderr(tmp_path / "tty", terminal=True)
    assert "%|" not in synth_stderr(tmp_path / "pipe", terminal=False)


@pytest.mark.parametrize("options, message", [
    (["--stall-rate", "1.5"], "argument --stall-rate: must be a number from 0 to 1, got 1.5"),
    (["--n-train", "-1"], "argument --n-train: must be a whole number >= 0, got -1"),
    (["--workers", "0"], "argument --workers: must be a whole number >= 1, got 0"),
    (["--profile", "huge"], "argument --profile: invalid choice: 'huge'"),
])
def test_synth_refuses_bad_options_before_writing_anything(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", str(tmp_path / "x"), *options])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_synth_names_an_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["synth", str(blocker / "out"), "--n-train", "1", "--n-test", "0", "--profile", "tiny"]) == 1
    assert f"cannot write to {blocker / 'out'}" in capsys.readouterr().out
