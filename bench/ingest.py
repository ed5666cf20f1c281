"""Ingest throughput, side by side in one run: raw decode vs the winners' ROI code vs ours.

    python -m bench.ingest [--stacks 200] [--workers 2] [--repeats 3] [--data DIR]

(a) ``raw``: decode every frame of every stack and nothing else (``core.video.mp4.iter_frames``): the
    limit for any pipeline that reads every frame.
(b) ``winners``: a re-implementation of the ROI code the Clog Loss winners published (the snippet
    from the DrivenData forum that the 2nd-place solution used): per frame ``cv2.inRange``, the
    mask's points as a Python list of tuples, ``cv2.boundingRect`` on them, keep the full red
    channel of every frame, crop at the end, then pickle everything into LMDB in one transaction.
(c) ``ours``: ``core.video.ingest.ingest`` into a fresh volume store.

``bench.ingest_command`` times the whole ``stalltriage ingest`` command (start-up, database,
exit) against a plain decode loop instead.

Each runs with two decoder settings: ``-1t`` one FFmpeg thread per process (our default) and
``-mt`` FFmpeg's automatic threading (what the winners' plain ``cv2.VideoCapture(path)`` does).

Each method runs its own pool of ``--workers`` processes over the same files; the methods take
turns within each repeat so that machine noise hits them alike. Besides wall-clock throughput it
reports stacks per CPU-second (this process plus all pool workers), which a shared, busy machine
distorts less. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle  # only for the winners' baseline below, which stored pickles; our store never does
import platform
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from multiprocessing import forkserver
from pathlib import Path

import cv2
import lmdb
import numpy as np

from core.video.crop import CropOptions
from core.video.ingest import ingest, quiet_decoder_logs
from core.video.mp4 import iter_frames
from core.video.workers import worker_context

ORANGE = ((9, 13, 104), (98, 143, 255))


def _raw_decode(path: str, threads: int) -> int:
    return sum(1 for _ in iter_frames(path, threads=threads))


def _winners_roi(path: str, threads: int | None) -> tuple[str, dict]:
    """The published per-frame ROI search, as the winners ran it (including its min/max quirk)."""
    if threads is None:
        cap = cv2.VideoCapture(path)
    else:
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    xs, ys, ws, hs, frames = [], [], [], [], []
    for _ in range(int(cap.get(cv2.CAP_PROP_FRAME_COUNT))):
        _, image = cap.read()
        mask = cv2.inRange(image, *ORANGE)
        rows, cols = np.where(mask > 0)
        points = [p for p in zip(rows, cols)]
        x, y, w, h = cv2.boundingRect(np.float32(points))
        xs.append(x)
        ys.append(y)
        ws.append(w)
        hs.append(h)
        frames.append(image[..., -1])
    cap.release()
    x, y, w, h = min(xs), min(ys), max(ws), max(hs)
    cropped = np.array(frames)[:, x:x + w, y:y + h]
    return Path(path).stem, {"frames": cropped.transpose(1, 2, 0)}


def _pool_map(func: Callable, paths: list[str], workers: int) -> list:
    with worker_context().Pool(workers, initializer=quiet_decoder_logs) as pool:
        return list(pool.imap_unordered(func, paths))


def run_raw(paths: list[str], workers: int, threads: int, scratch: Path) -> None:
    _pool_map(partial(_raw_decode, threads=threads), paths, workers)


def run_winners(paths: list[str], workers: int, threads: int, scratch: Path) -> None:
    features = dict(_pool_map(partial(_winners_roi, threads=None if threads == 0 else threads), paths, workers))
    map_size = int(1.1 * sum(f["frames"].nbytes for f in features.values())) + (1 << 20)
    env = lmdb.open(str(scratch / "winners.lmdb"), map_size=map_size)
    with env.begin(write=True) as txn:
        txn.put(b"keys", pickle.dumps(list(features)))
        for key, value in features.items():
            txn.put(key.encode(), pickle.dumps(value))
    env.close()


def run_ours(paths: list[str], workers: int, threads: int, scratch: Path) -> None:
    results = list(ingest(paths, scratch / "store", workers=workers, options=CropOptions(threads=threads),
                          progress=False))
    failed = [r.error for r in results if r.status != "ingested"]
    if failed:
        raise RuntimeError(f"ours failed on {len(failed)} stacks: {failed[:3]}")


METHODS = {"raw": run_raw, "winners": run_winners, "ours": run_ours}
THREADS = {"1t": 1, "mt": 0}


def stacks(data: Path, n: int) -> list[str]:
    """The ``n`` synthetic training stacks in ``data`` (generated once, then reused)."""
    from core.synth.generator import generate  # pandas: imported here, not in every pool worker

    folder = data / "train"
    if not folder.is_dir() or len(list(folder.glob("*.mp4"))) < n:
        generate(data, n_train=n, n_test=0, seed=7, progress=True)
    return sorted(str(p) for p in folder.glob("*.mp4"))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stacks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "stalltriage-bench-ingest")
    args = parser.parse_args()
    quiet_decoder_logs()
    paths = stacks(args.data, args.stacks)
    frames = sum(int(cv2.VideoCapture(p).get(cv2.CAP_PROP_FRAME_COUNT)) for p in paths)
    names = [f"{method}-{threads}" for threads in THREADS for method in METHODS]
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            method, threads = name.split("-")
            scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
            cpu_start, start = _cpu_seconds(), time.perf_counter()
            METHODS[method](paths, args.workers, THREADS[threads], scratch)
            elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
            shutil.rmtree(scratch)
            rates[name].append(len(paths) / elapsed)
            cpu_rates[name].append(len(paths) / cpu)
            print(f"repeat {repeat + 1}: {name:12s} {len(paths) / elapsed:7.2f} stacks/s, "
                  f"{len(paths) / cpu:7.2f} stacks per CPU-second", flush=True)
    pairs = [(f"ours-{t}", f"{base}-{t}") for t in THREADS for base in ("raw", "winners")]
    ratio = {f"{a}/{b}": [x / y for x, y in zip(rates[a], rates[b])] for a, b in pairs}
    cpu_ratio = {f"{a}/{b}": [x / y for x, y in zip(cpu_rates[a], cpu_rates[b])] for a, b in pairs}
    print(f"\n{len(paths)} stacks, {frames} frames, {args.workers} workers, {args.repeats} repeats, "
          f"{platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} CPUs\n")
    print("| method | stacks/s, wall (median) | runs | stacks per CPU-second (median) | runs |\n|---|---|---|---|---|")
    for name in names:
        print(f"| {name} | {_row(rates[name])} | {_row(cpu_rates[name])} |")
    print("\n| ratio | wall (median of per-repeat ratios) | runs | CPU (median) | runs |\n|---|---|---|---|---|")
    for name in ratio:
        print(f"| {name} | {_row(ratio[name])} | {_row(cpu_ratio[name])} |")


def _row(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)}"


def _cpu_seconds() -> float:
    """CPU time of this process, its reaped children and the fork server's reaped children.

    Pool workers are children of the fork server (see ``core.video.workers.worker_context``), so their
    time shows in its cumulative children's time (``/proc/<pid>/stat`` fields 16 and 17).
    """
    time.sleep(0.5)  # let the fork server reap the workers of the pool that just closed
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    server = forkserver._forkserver._forkserver_pid
    if server is not None:
        fields = Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


if __name__ == "__main__":
    main()
