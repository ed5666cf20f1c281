"""Learning curves from finished ``bench/quality.py`` runs: quality against training stacks and against minutes.

    python -m bench.learning_curve RUN_DIR [RUN_DIR ...] [--minutes 1,2,4,6,8,10]

Each RUN_DIR holds a run's ``config.json``, ``metrics.csv`` and the ``results.json`` that
``bench/quality.py`` writes. Two Markdown tables:

* **against training stacks**: the runs grouped by how many stacks they trained on (``bench/quality.py
  --train-stacks``), the median out-of-fold and test AUC / MCC of each group (MCC at the run's own
  threshold, chosen on its out-of-fold scores) and the runs' values;
* **against minutes**: each fold's validation AUC and MCC after its last epoch that ended within
  so many minutes of the fold's start (MCC at the threshold that suits the validation fold best,
  so an optimistic figure: it shows the trend, not a result), medians over every fold of every run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from core.model.rundir import RunDir


def by_stacks(runs: list[RunDir], metrics: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per run: training stacks, epochs per fold, out-of-fold and test AUC / MCC."""
    rows = []
    for run, per_epoch in zip(runs, metrics):
        results = run.read_json(run.root / "results.json")
        config = run.read_json(run.config)
        epochs = per_epoch.groupby("fold")["epoch"].max()
        rows.append({"run": run.root.name, "stacks": config["data"]["stacks"], "stalled": config["data"]["stalled"],
                     "epochs_min": int(epochs.min()), "epochs_max": int(epochs.max()),
                     "oof_auc": results["oof"]["auc"], "oof_mcc": results["oof"]["mcc"],
                     "test_auc": results["test"]["auc"], "test_mcc": results["test"]["mcc"]})
    return pd.DataFrame(rows)


def by_minutes(metrics: list[pd.DataFrame], marks: list[float]) -> pd.DataFrame:
    """Median validation AUC / MCC over every fold of the runs' ``metrics`` at each of ``marks`` minutes into the fold."""
    rows = []
    for run, per_epoch in enumerate(metrics):
        for fold, epochs in per_epoch.groupby("fold"):
            for mark in marks:
                done = epochs[epochs["seconds"] <= mark * 60]
                if not done.empty:
                    last = done.iloc[-1]
                    rows.append({"minutes": mark, "run": run, "fold": fold, "auc": last["auc"],
                                 "mcc": last["mcc"], "epoch": int(last["epoch"])})
    frame = pd.DataFrame(rows)
    return frame.groupby("minutes").agg(folds=("fold", "size"), epoch=("epoch", "median"), auc=("auc", "median"),
                                        mcc=("mcc", "median")).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--minutes", default="1,2,4,6,8,10", help="minutes into each fold (default 1,2,4,6,8,10)")
    args = parser.parse_args()
    dirs = [RunDir(path) for path in args.runs]
    metrics = [pd.read_csv(run.metrics) for run in dirs]
    runs = by_stacks(dirs, metrics)
    print("| training stacks (stalled) | runs | epochs per fold | out-of-fold AUC | out-of-fold MCC | test AUC | "
          "test MCC | test AUC (each) |\n|---|---|---|---|---|---|---|---|")
    for stacks, group in runs.groupby("stacks"):
        median = group[["oof_auc", "oof_mcc", "test_auc", "test_mcc"]].median()
        epochs = f"{group['epochs_min'].min()}–{group['epochs_max'].max()}"
        stalled = "/".join(str(s) for s in sorted(set(group["stalled"])))
        print(f"| {stacks:,} ({stalled}) | {len(group)} | {epochs} | {median.oof_auc:.3f} | {median.oof_mcc:.3f} | "
              f"{median.test_auc:.3f} | {median.test_mcc:.3f} | "
              f"{' / '.join(f'{v:.3f}' for v in group['test_auc'])} |")
    minutes = by_minutes(metrics, [float(m) for m in args.minutes.split(",")])
    print("\n| minutes into the fold | folds | epochs done (median) | validation AUC (median) | "
          "validation MCC (median) |\n|---|---|---|---|---|")
    for row in minutes.itertuples():
        print(f"| {row.minutes:g} | {row.folds} | {row.epoch:g} | {row.auc:.3f} | {row.mcc:.3f} |")


if __name__ == "__main__":
    main()
