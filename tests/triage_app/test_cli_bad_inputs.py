"""The bad-input sweep through ``stalltriage``: each case one clear line naming the file, nothing good lost.

Some cases need a file system that refuses writes. Tests run as root here, where file modes do
not stop writes, so a read-only bind mount (root) or the directory's mode (anyone else) makes a
read-only store, and a 1 MiB tmpfs makes a full disk (root only; skipped elsewhere, saying so).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest

from core.video.store import VolumeStore
from tests.core.video.stackfiles import write_stack
from triage_app.cli import main

HEADER = "filename,url,project_id,num_frames,crowd_score,tier1,micro,nano\n"


def rows(names: list[str], project: str = "P1", frames: int = 12) -> str:
    return "".join(f"{name},s3://b/{name},{project},{frames},0.1,True,False,False\n" for name in names)


def videos_with(tmp_path: Path, names: list[str], **kwargs) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        write_stack(folder / name, seed=i, **kwargs)
    return folder


def ingest(folder: Path, csv: Path, tmp_path: Path, store: Path | None = None, *extra: str) -> int:
    return main(["ingest", str(folder), "--metadata", str(csv), "--db", f"sqlite:///{tmp_path / 'st.db'}",
                 "--store", str(store or tmp_path / "store"), "--workers", "1", "--no-progress", *extra])


def statuses(tmp_path: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(tmp_path / "st.db") as connection:
        return {name: (status, project) for name, status, project in
                connection.execute("SELECT filename, status, project_id FROM vessel")}


@contextmanager
def mounted(target: Path, *mount_args: str) -> Iterator[None]:
    """``mount ARGS target`` for the block (root only: skips elsewhere, saying why)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a test file system needs root")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"this machine does not allow mounts: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_zero_byte_mp4_and_a_messy_csv(tmp_path, capsys):
    folder = videos_with(tmp_path, ["1.mp4", "2.mp4", "3.mp4"])
    (folder / "empty.mp4").write_bytes(b"")
    csv = tmp_path / "train_metadata.csv"
    text = (HEADER.replace("\n", ",notes\n")  # an extra column, BOM, CRLF line endings
            + "".join(line + ",fine\n" for line in rows(["1.mp4", "2.mp4", "empty.mp4"]).splitlines())
            + "3.mp4,u,P1,12,lots,True,False,False,non-numeric score\n"
            + "2.mp4,u,P1,12,0.2,True,False,False,duplicate\n")
    csv.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())

    assert ingest(folder, csv, tmp_path) == 1

    lines = capsys.readouterr().out.strip().splitlines()
    assert set(lines[:-1]) == {
        f"{csv}:5: 3.mp4: crowd_score 'lots' is not a number",
        f"{csv}:6: 2.mp4: duplicate filename (first on line 3); row ignored",
        f"{folder / '3.mp4'}: no row in {csv}; not ingested",
        f"{folder / 'empty.mp4'}: empty file",
    }
    assert lines[-1].startswith("ingested 2, already stored 0, failed 1, 3 input problem(s)")
    assert statuses(tmp_path) == {"1.mp4": ("ok", "P1"), "2.mp4": ("ok", "P1"), "empty.mp4": ("failed", "P1")}


def test_the_same_stack_under_two_projects_keeps_the_first(tmp_path, capsys):
    folder = videos_with(tmp_path, ["1.mp4"])
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(HEADER + rows(["1.mp4"], "P1"))
    second.write_text(HEADER + rows(["1.mp4"], "P2"))
    assert ingest(folder, first, tmp_path) == 0
    capsys.readouterr()
    assert ingest(folder, second, tmp_path) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"{second}: 1.mp4: conflicts with the database, not applied: project_id 'P2' differs from stored 'P1'"
    assert statuses(tmp_path) == {"1.mp4": ("ok", "P1")}


def test_a_database_from_a_newer_version_is_left_alone(tmp_path, capsys):
    folder = videos_with(tmp_path, ["1.mp4"])
    csv = tmp_path / "meta.csv"
    csv.write_text(HEADER + rows(["1.mp4"]))
    url = f"sqlite:///{tmp_path / 'st.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    with sqlite3.connect(tmp_path / "st.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    capsys.readouterr()
    for command in (["db", "upgrade"], ["db", "downgrade", "base"], ["tune"], ["app"], ["user", "list"]):
        assert main([*command, "--db", url]) == 1, command
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and out.startswith(f"error: {url}: ")
        assert "'0099_from_the_future', which this version of StallTriage does not know" in out
    assert ingest(folder, csv, tmp_path) == 2
    assert "does not know" in capsys.readouterr().out
    assert not (tmp_path / "store").exists()  # decoding started before the check, but no store is left
    assert main(["ingest", str(folder), "--metadata", str(csv), "--db", url, "--store", str(tmp_path / "a" / "b"),
                 "--workers", "2", "--no-progress"]) == 2
    assert not (tmp_path / "a").exists()
    with sqlite3.connect(tmp_path / "st.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099_from_the_future",)]
        assert connection.execute("SELECT count(*) FROM vessel").fetchone() == (0,)


def test_a_read_only_store_directory(tmp_path, capsys):
    folder = videos_with(tmp_path, ["1.mp4"])
    csv = tmp_path / "meta.csv"
    csv.write_text(HEADER + rows(["1.mp4"]))
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    if os.geteuid() == 0:  # root writes through file modes: a read-only bind mount refuses for real
        context = mounted(readonly, "--bind", "-o", "ro", str(readonly))
    else:
        readonly.chmod(0o555)
        context = nullcontext()
    with context:
        assert ingest(folder, csv, tmp_path, readonly / "store") == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"error: {readonly / 'store'}: cannot open the volume store for writing: ")
    assert ("Read-only file system" if os.geteuid() == 0 else "Permission denied") in out[0]
    assert statuses(tmp_path) == {"1.mp4": ("pending", "P1")}  # the metadata is kept for the rerun


def test_a_full_disk_keeps_what_was_stored_and_a_rerun_resumes(tmp_path, capsys):
    names = [f"{i}.mp4" for i in range(12)]
    folder = videos_with(tmp_path, names, depth=40)
    csv = tmp_path / "meta.csv"
    csv.write_text(HEADER + rows(names, frames=40))
    disk = tmp_path / "disk"
    with mounted(disk, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        assert ingest(folder, csv, tmp_path, disk / "store", "--batch-size", "2") == 1
        with VolumeStore(disk / "store", readonly=True) as store:
            kept = sorted(store.keys())
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"error: {disk / 'store'}: cannot write to the volume store: ")
    assert "the disk is full (" in lines[0]
    assert lines[1] == (f"stopped after storing {len(kept)} stack(s) (kept and recorded); "
                        "a rerun resumes with the others")
    assert 0 < len(kept) < len(names)
    recorded = statuses(tmp_path)
    assert sorted(name[:-4] for name, (status, _) in recorded.items() if status == "ok") == kept
    assert {status for status, _ in recorded.values()} == {"ok", "pending"}
