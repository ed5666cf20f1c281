"""The whole ``stalltriage ingest`` command against a plain decode loop, side by side in one run.

    python -m bench.ingest_command [--stacks 300] [--workers 2] [--repeats 3] [--data DIR] [--before TREE]

Both run as fresh processes over the same ``--stacks`` files, with ``--workers`` worker processes
and one FFmpeg thread per process:

(a) ``decode``: ``python -m bench.decode_loop`` — a plain ``multiprocessing.Pool`` that decodes
    every frame and does nothing else (start-up included): the limit.
(b) ``command``: ``python -m triage_app.cli ingest VIDEO_DIR --metadata CSV --labels CSV
    --workers N --no-progress --data-dir D`` with a fresh data directory (SQLite database and
    volume store) each repeat: start-up, CSV import, schema creation, decoding, cropping, store
    and database writes, exit.

(c) ``before`` (with ``--before TREE``): the same command run from another source tree, e.g. a
    ``git archive`` export of an earlier commit, for before/after figures against the same baseline.

``bench.ingest`` compares ``core.video.ingest.ingest`` alone (in this process) with raw decoding; this
script times what a user waits for. The two take turns within each repeat (alternating which
goes first) so that machine noise hits them alike. Besides wall-clock throughput it reports
stacks per CPU-second (the child and every process under it: this process becomes a child
subreaper, so the command's fork server and its workers, orphaned when the command exits, are
reaped here and counted), which a shared, busy machine distorts less. Load averages are printed at
the start and end of every run. ``--data`` is a competition-format folder (``train/``,
``train_metadata.csv``, ``train_labels.csv``); the first ``--stacks`` rows by filename are used
(symlinked into a scratch folder with CSVs of just those rows). A missing folder is generated
with ``stalltriage synth``'s realistic profile. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PR_SET_CHILD_SUBREAPER = 36


def prepare(data: Path, n: int, scratch: Path) -> tuple[Path, Path, Path]:
    """The first ``n`` training stacks of ``data`` (by filename) as a folder of links plus their CSVs."""
    if not (data / "train_metadata.csv").is_file():
        from core.synth.generator import generate

        generate(data, n_train=n, n_test=0, seed=7, profile="realistic", progress=True)
    with (data / "train_metadata.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if (data / "train" / r["filename"]).is_file()]
    rows = sorted(rows, key=lambda r: r["filename"])[:n]
    if len(rows) < n:
        raise SystemExit(f"{data}: only {len(rows)} training stacks with a file, {n} wanted")
    videos = scratch / "videos"
    videos.mkdir()
    for row in rows:
        (videos / row["filename"]).symlink_to((data / "train" / row["filename"]).resolve())
    metadata, labels = scratch / "train_metadata.csv", scratch / "train_labels.csv"
    _write_csv(metadata, fields, rows)
    names = {row["filename"] for row in rows}
    with (data / "train_labels.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        _write_csv(labels, reader.fieldnames, [r for r in reader if r["filename"] in names])
    return videos, metadata, labels


def _write_csv(path: Path, fields: list[str] | None, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields or [])
        writer.writeheader()
        writer.writerows(rows)


def timed(argv: list[str], expect: str, cwd: Path = ROOT) -> tuple[float, float]:
    """Run ``argv`` in a fresh process; wall seconds and CPU seconds of it and all its descendants.

    ``expect`` must appear in its output (the command's summary line), so a run that did other
    work than the one measured fails loudly.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STALLTRIAGE_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(cwd)  # this tree's packages, whatever is installed
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    _reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or expect not in done.stdout:
        raise SystemExit(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def _reap_orphans(timeout: float = 30.0) -> None:
    """Wait for the processes the child left behind (its fork server exits once the child has)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                raise SystemExit("an orphaned process of the measured command did not exit")
            time.sleep(0.01)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stacks", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "stalltriage-bench-ingest-realistic")
    parser.add_argument("--before", type=Path, default=None, metavar="TREE",
                        help="also time the command as run from this source tree (e.g. an earlier commit's export)")
    args = parser.parse_args()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit(f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(ctypes.get_errno())}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-ingest-command-"))
    try:
        videos, metadata, labels = prepare(args.data, args.stacks, scratch)
        command = [sys.executable, "-m", "triage_app.cli", "ingest", str(videos), "--metadata", str(metadata),
                   "--labels", str(labels), "--workers", str(args.workers), "--no-progress", "--data-dir"]
        runs = {
            "decode": lambda _: ([sys.executable, "-m", "bench.decode_loop", str(videos), "--workers",
                                  str(args.workers), "--threads", "1"], f"decoded {args.stacks} stacks", ROOT),
            "command": lambda data_dir: ([*command, str(data_dir)], f"ingested {args.stacks}, ", ROOT),
        }
        if args.before is not None:
            runs["before"] = lambda data_dir: ([*command, str(data_dir)], f"ingested {args.stacks}, ",
                                               args.before.resolve())
        walls: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        loads = [_load()]
        print(f"load average (1/5/15 min) at start: {loads[0]}", flush=True)
        for repeat in range(args.repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # the baseline first, then last
            for name in order:
                data_dir = scratch / f"data-{repeat}-{name}"
                argv, expect, tree = runs[name](data_dir)
                load_before = _load()
                wall, cpu = timed(argv, expect, tree)
                shutil.rmtree(data_dir, ignore_errors=True)
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"repeat {repeat + 1}: {name:8s} {wall:6.2f} s wall, {cpu:6.2f} CPU-s: "
                      f"{args.stacks / wall:6.2f} stacks/s, {args.stacks / cpu:6.2f} stacks per CPU-second "
                      f"(load {load_before} -> {_load()})", flush=True)
        loads.append(_load())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average (1/5/15 min) at start: {loads[0]}, at end: {loads[1]}")
    print(f"{args.stacks} stacks from {args.data}, {args.workers} workers, {args.repeats} repeats, "
          f"{platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} CPUs\n")
    print("| run | seconds, wall (median) | runs | stacks/s, wall | CPU-seconds (median) | runs | stacks per CPU-second |\n"
          "|---|---|---|---|---|---|---|")
    for name in runs:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"| {name} | {wall:.2f} | {_list(walls[name])} | {args.stacks / wall:.2f} | {cpu:.2f} | "
              f"{_list(cpus[name])} | {args.stacks / cpu:.2f} |")
    print("\n| throughput ratio (median of per-repeat ratios) | wall | runs | CPU | runs |\n|---|---|---|---|---|")
    for name in [n for n in runs if n != "decode"]:
        wall_ratio = [d / c for d, c in zip(walls["decode"], walls[name])]
        cpu_ratio = [d / c for d, c in zip(cpus["decode"], cpus[name])]
        print(f"| {name} / decode | {statistics.median(wall_ratio):.2f} | {_list(wall_ratio)} | "
              f"{statistics.median(cpu_ratio):.2f} | {_list(cpu_ratio)} |")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
