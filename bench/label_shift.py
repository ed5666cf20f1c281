"""The threshold for new stacks under label shift, on a finished ``bench.quality`` run.

    python -m bench.label_shift --run bench-out/quality/run-30min [--n-boot 200]

Reads the run's out-of-fold predictions (``oof.csv``, the reference at the training side's stall
share) and ``test_predictions.csv`` (written by ``bench.quality``: the test stacks' scores and
their hidden labels, at the test side's share). Estimates the test side's stall share from its
scores alone (``core.policy.label_shift``) and prints, as Markdown, the estimate against the true share
and the test MCC at the run's own threshold, at the threshold for the estimated share, at the
threshold for the true share (what a perfect estimate would give) and at the test side's best
threshold (an oracle no lab has). Only reads the run directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.metrics import mcc
from core.model.rundir import RunDir
from core.policy.label_shift import estimate_stall_share, threshold_for_share
from training.evaluation import best_mcc_threshold


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished bench.quality run directory")
    parser.add_argument("--n-boot", type=int, default=200, help="bootstrap redraws (default 200)")
    args = parser.parse_args()
    run = RunDir(args.run)
    oof = pd.read_csv(run.oof)
    test = pd.read_csv(run.root / "test_predictions.csv")
    tic = time.monotonic()
    est = estimate_stall_share(oof["probability"], oof["label"], test["probability"], n_boot=args.n_boot)
    seconds = time.monotonic() - tic
    y, p = test["label"].to_numpy(int), test["probability"].to_numpy(float)
    own = float(run.read_json(run.threshold)["threshold"])
    thresholds = {"the run's own (out-of-fold, MCC-optimal)": own,
                  "for the estimated share (what predict now applies)": threshold_for_share(
                      oof["probability"], oof["label"], est.share),
                  "for the true share (a perfect estimate)": threshold_for_share(oof["probability"], oof["label"],
                                                                                y.mean()),
                  "the test side's best (oracle)": best_mcc_threshold(y, p)[0]}
    print(f"run {run.root}; {platform.node()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| reference (out-of-fold) share | true test share | estimated share | 95 % interval | "
          "test stacks | seconds |\n|---|---|---|---|---|---|")
    print(f"| {est.reference_share:.4f} ({len(oof)} stacks) | {y.mean():.4f} | {est.share:.4f} | "
          f"{est.low:.4f}–{est.high:.4f} | {est.n_new} | {seconds:.1f} |\n")
    print("| threshold | value | test MCC | sensitivity | specificity | stacks called stalled |\n|---|---|---|---|---|---|")
    for name, t in thresholds.items():
        pred = p >= t
        print(f"| {name} | {t:.4f} | {mcc(y, pred):.4f} | {pred[y == 1].mean():.4f} | {1 - pred[y == 0].mean():.4f} "
              f"| {int(pred.sum())} |")


if __name__ == "__main__":
    main()
