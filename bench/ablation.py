"""Ablation of the training recipe: each choice against the previous default, several seeds, medians.

    python -m bench.ablation --train-data DIR --test-data DIR --store STORE --out OUT
                             [--time-budget 3] [--seeds 0 1 2] [--threads 2] [--variants NAME ...]

``--train-data`` and ``--test-data`` are `stalltriage synth` output directories (train and test can
come from separate calls, e.g. ``--stall-rate 0.2`` for training and ``0.05`` for testing), both
ingested into ``--store`` beforehand with `stalltriage ingest`. Each variant is a list of
`stalltriage train` options (parsed by that command's parser, so a variant is exactly what a user
would type); the variants build on each other from the previous default (``old-default``) to the
new one. Every variant × seed trains with the same ``--time-budget``, then scores the test split
(cross-fitted, see ``core.model.predict``) and is evaluated at the run's own out-of-fold threshold.
Results go to ``OUT/results.jsonl`` one line per run (a rerun skips finished runs); the Markdown
table of medians is printed at the end, with the load average seen during the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from bench.quality import records_from_csvs, stored_only, train_options
from core.model.predict import predict_stacks
from core.model.rundir import RunDir
from training.cv import train_cv
from training.evaluation import score_report

# Each step adds one choice to the previous one; the last two drop tier 2 again, as measured.
VARIANTS = {
    "old-default": ["--tier2", "off", "--no-mask-channel", "--epochs", "12"],
    "+tier2 soft": ["--no-mask-channel", "--epochs", "12"],
    "+mask channel": ["--epochs", "12"],
    "+no epoch cap (new default)": [],
    "+3 folds": ["--folds", "3"],
    "tier 1 only, mask, 3 folds": ["--tier2", "off", "--folds", "3"],
    "tier 1 only, mask": ["--tier2", "off"],
}
METRICS = ("test_auc", "test_mcc", "test_sensitivity", "test_specificity", "oof_auc", "oof_mcc", "epochs_per_fold")


def run_variant(name: str, seed: int, args: argparse.Namespace, records) -> dict:
    """Train and evaluate one variant with one seed; the result row."""
    extra = [*VARIANTS[name], "--seed", str(seed), "--time-budget", str(args.time_budget), "--device", "cpu"]
    config = train_options(extra)
    run = RunDir(args.out / f"{name.replace(' ', '_').replace('(', '').replace(')', '')}-s{seed}")
    load = [os.getloadavg()[0]]
    tic = time.monotonic()
    oof = train_cv(records, args.store, run.root, config, command=f"bench/ablation.py {name} seed {seed}") \
        if not run.is_complete() else run.read_json(run.threshold)["oof"]
    train_s = time.monotonic() - tic
    load.append(os.getloadavg()[0])
    test = [r for r in records if r.split == "test"]
    frame = predict_stacks(run.root, test, args.store, progress=False)
    truth = pd.read_csv(args.test_data / "test_labels.csv").set_index("filename")["stalled"]
    report = score_report(truth.loc[frame["filename"]].to_numpy(), frame["probability"].to_numpy(),
                           frame.attrs["threshold"])
    metrics = pd.read_csv(run.metrics)
    return {"variant": name, "seed": seed, "options": extra, "train_s": train_s, "load": load,
            "epochs_per_fold": float(metrics.groupby("fold")["epoch"].max().median()),
            **{f"test_{k}": v for k, v in report.items()}, **{f"oof_{k}": v for k, v in oof.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", type=Path, required=True)
    parser.add_argument("--test-data", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("bench-out/ablation"))
    parser.add_argument("--time-budget", type=float, default=3.0, help="training minutes per run (default 3)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    records = [r for r in records_from_csvs(args.train_data) if r.split == "train"]
    records += [r for r in records_from_csvs(args.test_data) if r.split == "test"]
    records = stored_only(records, args.store)
    results_path = args.out / "results.jsonl"
    done = {(row["variant"], row["seed"]) for row in map(json.loads, results_path.read_text().splitlines())} \
        if results_path.exists() else set()
    for seed in args.seeds:  # seeds outermost: machine noise hits every variant alike
        for name in args.variants:
            if (name, seed) in done:
                continue
            row = run_variant(name, seed, args, records)
            with results_path.open("a") as out:
                out.write(json.dumps(row, default=float) + "\n")
            print(f"{name} seed {seed}: test AUC {row['test_auc']:.4f} MCC {row['test_mcc']:.4f} "
                  f"(load {row['load']})", flush=True)
    rows = pd.DataFrame([json.loads(line) for line in results_path.read_text().splitlines()])
    print(f"\n{len(rows)} runs, --time-budget {args.time_budget} min, load average "
          f"{min(min(x) for x in rows['load']):.1f}-{max(max(x) for x in rows['load']):.1f}\n")
    print("| variant | seeds | " + " | ".join(METRICS) + " |\n|---|---|" + "---|" * len(METRICS))
    for name in args.variants:
        part = rows[rows["variant"] == name]
        if len(part):
            cells = " | ".join(f"{statistics.median(part[m]):.3f}" for m in METRICS)
            print(f"| {name} | {len(part)} | {cells} |")


if __name__ == "__main__":
    main()
