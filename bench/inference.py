"""Inference throughput (stacks/s): cross-fitted scoring (``predict``) vs the old all-folds ensemble.

    python -m bench.inference --run RUN_DIR --store STORE --metadata test_metadata.csv
                              [--stacks 300] [--repeats 3] [--threads 2] [--device cpu] [--tta N]
                              [--batch-size 8]

Scores the first ``--stacks`` stacks of the metadata file (new stacks: no labels) two ways, taking
turns within each repeat so machine noise hits them alike:

- **cross-fitted**: :func:`core.model.predict.predict_stacks`, what `stalltriage predict` runs: each stack
  by one fold's members (its snapshots × TTA views);
- **all folds**: every member of every fold on every stack (the scoring before cross-fitting).

Both times run end to end from the run directory and the store: loading the ensemble, reading
and resizing the stacks, batching by depth and the forward passes (the CLI adds reading the
records from the database and writing the CSV and prediction rows). Prints a Markdown table with
medians and the speed-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from core.labels.competition import read_metadata
from core.labels.records import StackRecord
from core.model.predict import load_ensemble, predict_stacks, score_keys
from core.video.store import key_for


def _all_folds(args: argparse.Namespace, records: list[StackRecord]) -> None:
    ensemble = load_ensemble(args.run, args.device)
    score_keys(ensemble.members(), args.store, [r.key for r in records], ensemble.spec,
               n_views=args.tta or ensemble.tta, batch_size=args.batch_size, device=args.device)


def _cross_fitted(args: argparse.Namespace, records: list[StackRecord]) -> None:
    predict_stacks(args.run, records, args.store, tta=args.tta, batch_size=args.batch_size, device=args.device,
                   progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="finished training run directory")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--metadata", type=Path, required=True, help="metadata CSV of the stacks to score")
    parser.add_argument("--stacks", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tta", type=int, default=None, help="flip views (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    records = [StackRecord(r.filename, key_for(r.filename), r.project_id, "test")
               for r in read_metadata(args.metadata).rows][:args.stacks]
    ways = {"cross-fitted (predict)": _cross_fitted, "all folds (before)": _all_folds}
    times: dict[str, list[float]] = {name: [] for name in ways}
    loads = []
    for repeat in range(args.repeats):
        for name, score in ways.items():
            tic = time.perf_counter()
            score(args, records)
            times[name].append(time.perf_counter() - tic)
            loads.append(os.getloadavg()[0])
            print(f"repeat {repeat + 1}: {name}: {len(records) / times[name][-1]:.1f} stacks/s", flush=True)
    ensemble = load_ensemble(args.run)
    members = len(ensemble.members())
    print(f"\n{ensemble.arch}, {len(ensemble.folds)} folds, {members} members, input "
          f"{ensemble.spec.channels}×{ensemble.spec.max_depth}×{'×'.join(map(str, ensemble.spec.grid))}"
          f"{' (straightened vessel)' if ensemble.spec.vessel else ''}, "
          f"TTA {args.tta or ensemble.tta}, "
          f"{len(records)} stacks, {args.threads} threads, device {args.device}, medians of {args.repeats}, "
          f"load average {min(loads):.1f}-{max(loads):.1f}\n")
    print("| scoring | forward passes per stack | stacks/s | speed-up |\n|---|---|---|---|")
    base = statistics.median(times["all folds (before)"])
    for name, passes in (("cross-fitted (predict)", members // len(ensemble.folds)), ("all folds (before)", members)):
        med = statistics.median(times[name])
        print(f"| {name} | {passes * (args.tta or ensemble.tta)} | {len(records) / med:.1f} | {base / med:.2f}× |")


if __name__ == "__main__":
    main()
