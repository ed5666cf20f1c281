"""Inference throughput of ``predict`` (stacks/s), TTA 1 vs 8 side by side, medians of several runs.

    python bench/inference.py --run RUN_DIR --store STORE --metadata test_metadata.csv
                              [--stacks 200] [--repeats 3] [--threads 2] [--device cpu]
                              [--views 1 8] [--batch-size 8]

Scores the first ``--stacks`` stacks of the metadata file with the whole ensemble of a finished run
(every fold's snapshots: these stacks are not in the run's training set). The settings take turns
within each repeat so machine noise hits them alike. Time includes reading from the store,
resizing, batching by depth and the forward passes; model loading is excluded. Prints a Markdown
table with medians and the ratio to the first setting.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from core.competition import read_metadata
from core.predict import load_ensemble, score_keys
from core.store import key_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="finished training run directory")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--metadata", type=Path, required=True, help="metadata CSV of the stacks to score")
    parser.add_argument("--stacks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--views", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keys = [key_for(r.filename) for r in read_metadata(args.metadata).rows][:args.stacks]
    ensemble = load_ensemble(args.run, args.device)
    members = ensemble.members()
    times: dict[int, list[float]] = {v: [] for v in args.views}
    for repeat in range(args.repeats):
        for views in args.views:
            tic = time.perf_counter()
            score_keys(members, args.store, keys, ensemble.spec, n_views=views, batch_size=args.batch_size,
                       workers=args.workers, device=args.device)
            times[views].append(time.perf_counter() - tic)
            print(f"repeat {repeat + 1}: TTA {views}: {len(keys) / times[views][-1]:.2f} stacks/s", flush=True)
    base = statistics.median(times[args.views[0]])
    print(f"\n{ensemble.arch}, {len(members)} members, input {ensemble.spec.max_depth}×{ensemble.spec.size}², "
          f"{len(keys)} stacks, {args.threads} threads, device {args.device}, medians of {args.repeats}\n")
    print("| TTA views | forward passes per stack | stacks/s | time vs TTA "
          f"{args.views[0]} |\n|---|---|---|---|")
    for views in args.views:
        med = statistics.median(times[views])
        print(f"| {views} | {views * len(members)} | {len(keys) / med:.2f} | {med / base:.2f}× |")


if __name__ == "__main__":
    main()
