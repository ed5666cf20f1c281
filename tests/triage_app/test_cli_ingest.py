"""``stalltriage ingest``: bad inputs get one line each, good stacks are stored, kill -9 then rerun."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.labels.competition import read_metadata
from core.video.crop import read_stack
from core.video.store import VolumeStore, key_for
from tests.core.video.stackfiles import write_changing_size, write_stack, write_zero_frames
from tests.imports import libraries_imported_by
from triage_app.cli import main

HEADER = "filename,url,project_id,num_frames,crowd_score,tier1,micro,nano\n"


def metadata_row(name: str, frames: int = 8, score: float = 0.1) -> str:
    return f"{name},s3://bucket/{name},P1,{frames},{score},True,False,False\n"


def test_synthetic_data_ingests_and_reads_back(synth_data, tmp_path, capsys):
    store_path = tmp_path / "store"
    argv = ["ingest", str(synth_data / "train"), "--metadata", str(synth_data / "train_metadata.csv"),
            "--labels", str(synth_data / "train_labels.csv"), "--store", str(store_path), "--workers", "2",
            "--no-progress"]
    assert main(argv) == 0
    rows = read_metadata(synth_data / "train_metadata.csv").rows
    assert capsys.readouterr().out.strip() == f"ingested {len(rows)}, already stored 0, failed 0 (store: {store_path})"
    with VolumeStore(store_path, readonly=True) as store:
        assert len(store) == len(rows)
        for row in rows:
            stored = store.get(key_for(row.filename))
            x0, y0, x1, y1 = stored.meta["roi"]
            assert stored.volume.shape == (row.num_frames, y1 - y0, x1 - x0) == (stored.meta["num_frames"], *stored.mask.shape)
    assert main(argv) == 0
    assert capsys.readouterr().out.strip().startswith(f"ingested 0, already stored {len(rows)}, failed 0")


def test_every_bad_input_gets_one_clear_line(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    good = ["1.mp4", "2.mp4", "edge.mp4"]
    write_stack(videos / "1.mp4", seed=1)
    write_stack(videos / "2.mp4", seed=2)
    write_stack(videos / "edge.mp4", box=(-4, 10, 70, 60))
    write_stack(videos / "unlisted.mp4")
    (videos / "text.mp4").write_text("hello")
    write_stack(videos / "one.mp4", depth=1)
    write_stack(videos / "blank.mp4", box=None)
    write_zero_frames(videos / "zero.mp4", tmp_path)
    write_changing_size(videos / "resized.mp4", tmp_path)
    whole = write_stack(tmp_path / "whole.mp4", depth=20).read_bytes()
    (videos / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    listed = good + ["text.mp4", "one.mp4", "blank.mp4", "zero.mp4", "cut.mp4", "resized.mp4", "gone.mp4"]
    csv = tmp_path / "train_metadata.csv"
    csv.write_text(HEADER + "".join(metadata_row(name) for name in listed) + metadata_row("1.mp4", score=0.9))
    labels = tmp_path / "train_labels.csv"
    labels.write_text("filename,stalled\n1.mp4,0\n2.mp4,1\nstranger.mp4,1\n")
    store_path = tmp_path / "store"

    code = main(["ingest", str(videos), "--metadata", str(csv), "--labels", str(labels), "--store", str(store_path),
                 "--workers", "2", "--no-progress"])

    lines = capsys.readouterr().out.strip().splitlines()
    expected = {
        f"{csv}:12: 1.mp4: duplicate filename (first on line 2); row ignored",
        f"{videos / 'gone.mp4'}: listed in {csv} but no such file",
        f"{videos / 'unlisted.mp4'}: no row in {csv}; not ingested",
        f"stranger.mp4: in {labels} but not in {csv}",
        f"{videos / 'text.mp4'}: not an mp4 file (no ftyp box at the start)",
        f"{videos / 'one.mp4'}: only 1 frame; a stack needs at least 2 depth slices to show flow",
        f"{videos / 'blank.mp4'}: no orange outline found in any of its 12 frames",
        f"{videos / 'zero.mp4'}: contains zero frames",
    }
    assert expected <= set(lines)
    assert any(line.startswith(f"{videos / 'cut.mp4'}: truncated or corrupt: decoded ") for line in lines)
    assert len(lines) == len(expected) + 2
    assert lines[-1] == f"ingested 4, already stored 0, failed 5, 4 input problem(s) (store: {store_path})"
    assert code == 1
    with VolumeStore(store_path, readonly=True) as store:
        assert sorted(store.keys()) == ["1", "2", "edge", "resized"]
        assert store.get("edge").meta["roi"][0] == 0


def test_unusable_inputs_and_store_exit_non_zero(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_stack(videos / "1.mp4")
    csv = tmp_path / "meta.csv"
    csv.write_text("filename,url,project_id\n1.mp4,u,P\n")
    assert main(["ingest", str(videos), "--metadata", str(csv), "--store", str(tmp_path / "s")]) == 2
    assert capsys.readouterr().out.strip() == (f"error: {csv}: missing column(s) num_frames "
                                               "(expected filename,url,project_id,num_frames; found filename,url,project_id)")
    csv.write_text(HEADER + metadata_row("1.mp4"))
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["ingest", str(videos), "--metadata", str(csv), "--store", str(blocker / "store")]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"error: {blocker / 'store'}: cannot open the volume store for writing")


def test_unexpected_failure_is_one_line_and_its_traceback_goes_to_a_log(tmp_path, capsys, monkeypatch):
    import core.video.ingest

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("1.mp4", "bug.mp4", "2.mp4"):
        write_stack(videos / name, seed=len(name))
    csv = tmp_path / "train_metadata.csv"
    csv.write_text(HEADER + "".join(metadata_row(name) for name in ("1.mp4", "bug.mp4", "2.mp4")))

    def read_or_fail(path, options):  # stands in for a bug hit by one stack (as 129 frames once did)
        if path.endswith("bug.mp4"):
            raise ValueError("shape mismatch: a bug, not a bad file")
        return read_stack(path, options)

    monkeypatch.setattr(core.video.ingest, "read_stack", read_or_fail)
    data_dir = tmp_path / "data"
    code = main(["ingest", str(videos), "--metadata", str(csv), "--data-dir", str(data_dir), "--workers", "1",
                 "--no-progress"])

    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    logs = list((data_dir / "logs").glob("ingest-*.log"))
    assert len(logs) == 1 and code == 1
    assert lines == [f"{videos / 'bug.mp4'}: unexpected error: ValueError: shape mismatch: a bug, not a bad file "
                     f"(traceback in {logs[0]})",
                     f"ingested 2, already stored 0, failed 1 (store: {data_dir / 'store'})"]
    assert "Traceback" not in captured.out + captured.err
    trace = logs[0].read_text()
    assert trace.startswith(f"{videos / 'bug.mp4'}: unexpected error") and "Traceback (most recent call last)" in trace
    assert "in read_or_fail" in trace
    with VolumeStore(data_dir / "store", readonly=True) as store:
        assert sorted(store.keys()) == ["1", "2"]


@pytest.mark.slow
def test_kill_9_half_way_then_rerun_stores_each_stack_once(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    names = [f"{1000 + i}.mp4" for i in range(36)]
    with ThreadPoolExecutor(2) as pool:  # each write is an ffmpeg subprocess
        list(pool.map(lambda i: write_stack(videos / names[i], depth=24, size=(112, 128), seed=i,
                                            box=(20 + i % 9, 15, 90, 80 - i % 7)), range(len(names))))
    csv = tmp_path / "train_metadata.csv"
    csv.write_text(HEADER + "".join(metadata_row(name, 24) for name in names))
    store_path = tmp_path / "store"
    command = [sys.executable, "-m", "triage_app.cli", "ingest", str(videos), "--metadata", str(csv),
               "--store", str(store_path), "--workers", "2", "--batch-size", "3", "--no-progress"]
    cwd = Path(__file__).resolve().parents[2]

    proc = subprocess.Popen(command, cwd=cwd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    stored_at_kill = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (store_path / "data.mdb").exists():
            with VolumeStore(store_path, readonly=True) as store:
                stored_at_kill = len(store)
            if stored_at_kill >= 9:
                break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    assert 9 <= stored_at_kill < len(names)

    rerun = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = re.fullmatch(r"ingested (\d+), already stored (\d+), failed 0 \(store: .*\)\n", rerun.stdout)
    assert summary, rerun.stdout
    ingested, already = int(summary[1]), int(summary[2])
    assert ingested + already == len(names) and already >= stored_at_kill

    with VolumeStore(store_path, readonly=True) as store:
        assert sorted(store.keys()) == sorted(name[:-4] for name in names) and len(store) == len(names)
        for name in names:
            stored, fresh = store.get(name[:-4]), read_stack(videos / name)
            x0, y0, x1, y1 = stored.meta["roi"]
            assert stored.volume.shape == (stored.meta["num_frames"], y1 - y0, x1 - x0)
            np.testing.assert_array_equal(stored.volume, fresh.volume)
            np.testing.assert_array_equal(stored.mask, fresh.mask)


def test_the_ingest_path_imports_no_numerics_it_does_not_use():
    """Start-up is serial time before the first decode: scikit-learn, scipy and pandas cost the
    command several CPU-seconds to import (more than decoding 100 stacks) and it uses none of them."""
    loaded = libraries_imported_by(
        "from triage_app.cli import build_parser, named_command; build_parser(named_command(['ingest'])); "
        "import triage_app.commands.ingest, core.labels.competition, core.video.ingest, core.video.store, "
        "db.migrate, db.recording, triage_app.database")
    heavy = {"sklearn", "scipy", "pandas", "torch", "monai", "streamlit"}
    assert not loaded & heavy, sorted(loaded & heavy)
