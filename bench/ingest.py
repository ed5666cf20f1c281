"""Ingest throughput, side by side in one run: raw decode vs the winners' ROI code vs ours.

    python bench/ingest.py [--stacks 200] [--workers 2] [--repeats 3] [--data DIR]

(a) ``raw``: decode every frame of every stack and nothing else (``core.mp4.iter_frames``): the
    limit for any pipeline that reads every frame.
(b) ``winners``: a re-implementation of the ROI code the Clog Loss winners published (the snippet
    from the DrivenData forum that the 2nd-place solution used): per frame ``cv2.inRange``, the
    mask's points as a Python list of tuples, ``cv2.boundingRect`` on them, keep the full red
    channel of every frame, crop at the end, then pickle everything into LMDB in one transaction.
    ``winners-1t`` is the same code with our decoder setting (one FFmpeg thread per process), to
    separate the decoder setting from the method.
(c) ``ours``: ``core.ingest.ingest`` into a fresh volume store.

Each method runs its own pool of ``--workers`` processes over the same files; the methods take
turns within each repeat so that machine noise hits them alike. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle  # only for the winners' baseline below, which stored pickles; our store never does
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import lmdb
import numpy as np

from core.ingest import ingest, quiet_decoder_logs
from core.mp4 import iter_frames
from core.synth import generate

ORANGE = ((9, 13, 104), (98, 143, 255))


def _raw_decode(path: str) -> int:
    return sum(1 for _ in iter_frames(path))


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


def _winners_default(path: str) -> tuple[str, dict]:
    return _winners_roi(path, None)


def _winners_one_thread(path: str) -> tuple[str, dict]:
    return _winners_roi(path, 1)


def _pool_map(func: Callable, paths: list[str], workers: int) -> list:
    with multiprocessing.get_context("fork").Pool(workers, initializer=quiet_decoder_logs) as pool:
        return list(pool.imap_unordered(func, paths))


def run_raw(paths: list[str], workers: int, scratch: Path) -> None:
    _pool_map(_raw_decode, paths, workers)


def _run_winners(func: Callable, paths: list[str], workers: int, scratch: Path) -> None:
    features = dict(_pool_map(func, paths, workers))
    map_size = int(1.1 * sum(f["frames"].nbytes for f in features.values())) + (1 << 20)
    env = lmdb.open(str(scratch / "winners.lmdb"), map_size=map_size)
    with env.begin(write=True) as txn:
        txn.put(b"keys", pickle.dumps(list(features)))
        for key, value in features.items():
            txn.put(key.encode(), pickle.dumps(value))
    env.close()


def run_winners(paths: list[str], workers: int, scratch: Path) -> None:
    _run_winners(_winners_default, paths, workers, scratch)


def run_winners_one_thread(paths: list[str], workers: int, scratch: Path) -> None:
    _run_winners(_winners_one_thread, paths, workers, scratch)


def run_ours(paths: list[str], workers: int, scratch: Path) -> None:
    results = list(ingest(paths, scratch / "store", workers=workers, progress=False))
    failed = [r.error for r in results if r.status != "ingested"]
    if failed:
        raise RuntimeError(f"ours failed on {len(failed)} stacks: {failed[:3]}")


METHODS = {"raw": run_raw, "winners": run_winners, "winners-1t": run_winners_one_thread, "ours": run_ours}


def stacks(data: Path, n: int) -> list[str]:
    """The ``n`` synthetic training stacks in ``data`` (generated once, then reused)."""
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
    rates: dict[str, list[float]] = {name: [] for name in METHODS}
    for repeat in range(args.repeats):
        for name, method in METHODS.items():
            scratch = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
            start = time.perf_counter()
            method(paths, args.workers, scratch)
            elapsed = time.perf_counter() - start
            shutil.rmtree(scratch)
            rates[name].append(len(paths) / elapsed)
            print(f"repeat {repeat + 1}: {name:10s} {len(paths) / elapsed:7.2f} stacks/s", flush=True)
    ratio = {f"ours/{base}": [o / b for o, b in zip(rates["ours"], rates[base])]
             for base in ("raw", "winners", "winners-1t")}
    print(f"\n{len(paths)} stacks, {frames} frames, {args.workers} workers, {args.repeats} repeats, "
          f"{platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} CPUs\n")
    print("| method | stacks/s (median) | runs |\n|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    print("\n| ratio | median of per-repeat ratios | runs |\n|---|---|---|")
    for name, values in ratio.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()
