"""Likely crowd errors against the hidden truth: precision and recall of ``core.labels.crowd_errors``.

    python -m bench.crowd_errors --data bench-out/quality/data --run bench-out/quality/run-30min
                                 [--seed 7] [--stall-rate 0.2] [--profile realistic]

The stacks are a ``bench.quality`` run's training side: ``--data`` is the folder that
``stalltriage synth`` wrote for it and ``--run`` the run directory (its ``oof.csv`` holds the
out-of-fold probabilities). The crowd's answer is its majority, ``crowd_score >= 0.5`` (as
training reads a stack without a label); the truth is not in the CSVs a lab would have, so it is
recovered by redrawing each stack's job (``core.synth.generator.make_job`` with the seed, stall rate and
profile the data was written with; every redrawn crowd score is checked against the metadata).
A crowd error is a stack whose crowd answer differs from the truth. Prints Markdown: precision
and recall of the flagged list for each cleanlab rule offered and several ``max_margin`` values,
and precision among the first k of the default ranking. Only reads ``--data`` and ``--run``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.labels.crowd_errors import DEFAULT_MAX_MARGIN, FILTERS, crowd_margin, find_crowd_errors
from core.model.rundir import RunDir
from core.synth.generator import make_job

MARGINS = (0.4, DEFAULT_MAX_MARGIN, 0.8, 1.0)
DEFAULTS = (FILTERS[0], DEFAULT_MAX_MARGIN)
TOP_K = (10, 25, 50)


def training_side(data: Path, run: RunDir, *, seed: int, stall_rate: float, profile: str) -> pd.DataFrame:
    """The run's out-of-fold stacks with crowd score, tier 1, crowd answer and the redrawn truth."""
    meta = pd.read_csv(data / "train_metadata.csv", dtype={"filename": str})
    jobs = (make_job(seed, "train", i, stall_rate=stall_rate, profile=profile) for i in range(len(meta)))
    truth = pd.DataFrame([(j.filename, int(j.stalled), j.crowd_score) for j in jobs],
                         columns=["filename", "truth", "redrawn_score"])
    stacks = meta.merge(truth, on="filename", how="left", validate="one_to_one")
    if stacks["truth"].isna().any() or not np.allclose(stacks["crowd_score"], stacks["redrawn_score"]):
        raise SystemExit(f"{data}: the redrawn jobs do not match the metadata (seed, stall rate or profile differ)")
    oof = pd.read_csv(run.oof, dtype={"filename": str}).loc[:, ["filename", "probability"]]
    stacks = oof.merge(stacks, on="filename", how="inner", validate="one_to_one")
    return stacks.assign(label=(stacks["crowd_score"] >= 0.5).astype(int), tier1=stacks["tier1"].astype(bool))


def scores(flagged: pd.Series, wrong: pd.Series) -> dict[str, float]:
    """Counts, precision and recall of a flagged mask against the crowd's errors."""
    hits = int((flagged & wrong).sum())
    return {"flagged": int(flagged.sum()), "errors found": hits,
            "precision": hits / max(int(flagged.sum()), 1), "recall": hits / max(int(wrong.sum()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the synth folder of the training side")
    parser.add_argument("--run", type=Path, required=True, help="the run directory (oof.csv)")
    parser.add_argument("--seed", type=int, default=7, help="synth seed of the training side (default 7)")
    parser.add_argument("--stall-rate", type=float, default=0.2, help="its --stall-rate (default 0.2)")
    parser.add_argument("--profile", default="realistic")
    args = parser.parse_args()
    stacks = training_side(args.data, RunDir(args.run), seed=args.seed, stall_rate=args.stall_rate,
                           profile=args.profile)
    wrong = stacks["label"] != stacks["truth"]
    low = crowd_margin(stacks["crowd_score"]) <= DEFAULT_MAX_MARGIN
    print(f"{len(stacks)} out-of-fold stacks of {args.run}; {int(wrong.sum())} crowd errors "
          f"({wrong.mean():.1%}; {int((wrong & low).sum())} with margin <= {DEFAULT_MAX_MARGIN}, "
          f"{int((wrong & stacks['tier1']).sum())} tier 1); {platform.node()}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| cleanlab filter_by | max margin | flagged | crowd errors found | precision | recall | seconds |\n"
          "|---|---|---|---|---|---|---|")
    for filter_by in FILTERS:
        for margin in MARGINS:
            tic = time.monotonic()
            flagged = find_crowd_errors(stacks, max_margin=margin, filter_by=filter_by)
            seconds = time.monotonic() - tic
            row = scores(stacks["filename"].isin(flagged["filename"]), wrong)
            print(f"| {filter_by}{' (default)' if (filter_by, margin) == DEFAULTS else ''} | {margin:g} | "
                  f"{row['flagged']} | {row['errors found']} | {row['precision']:.3f} | {row['recall']:.3f} | "
                  f"{seconds:.2f} |")
    print()
    ranked = find_crowd_errors(stacks)
    truth = stacks.set_index("filename")["truth"]
    hit = ranked["label"].to_numpy() != truth.loc[ranked["filename"]].to_numpy()
    print("| first k of the ranked list (default margin) | " + " | ".join(map(str, TOP_K)) + " |\n|---|"
          + "---|" * len(TOP_K))
    print("| precision | " + " | ".join(f"{hit[:k].mean():.2f}" if len(hit) >= k else "–" for k in TOP_K) + " |")
    tier = ranked["tier1"].to_numpy(bool)
    print(f"\nflagged at the default margin: {int(tier.sum())} tier 1 (precision "
          f"{hit[tier].mean() if tier.any() else float('nan'):.2f}), {int((~tier).sum())} other "
          f"(precision {hit[~tier].mean() if (~tier).any() else float('nan'):.2f})")


if __name__ == "__main__":
    main()
