"""Is a synthetic profile hard for hand-made features yet learnable by the project's own chain?

    python -m bench.synth_check [--out bench-out/synth-check] [--profile realistic] [--n-train 600]
                                [--stall-rate 0.2] [--seed 5] [--learn] [--learn-train 400]
                                [--learn-test 200] [--time-budget 8]

1. **Leak check**: ``--n-train`` stacks are generated and read back as the competition's winners
   read them; metadata, intensity statistics inside the outline and simple temporal statistics
   (second-difference energy, slice-to-slice change, lag-1 autocorrelation, temporal spread of the
   outlined lumen against the tissue's) feed a logistic regression and a gradient boosting,
   cross-validated (stratified 5-fold; the appearance-only sets also grouped by project). Each
   should stay weak (MCC < 0.3) so that the cue needs a real model.
2. **Learnability** (``--learn``): ``stalltriage synth`` → ``db upgrade`` → ``ingest`` →
   ``train --time-budget`` → ``predict``, on a separate small set with its own test split; prints
   the test AUC and MCC at the run's own threshold, overall and on easy and hard test stacks.

Steps already done in ``--out`` are reused. Prints Markdown tables and writes ``results.json``.
Exits 1 when a hand-made feature set reaches MCC 0.3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from bench.synth_features import (INTENSITY_FEATURES, METADATA_FEATURES, TEMPORAL_FEATURES, handmade_features,
                                  leak_scores)
from core.synth.generator import make_job

FEATURE_SETS = {
    "metadata": (METADATA_FEATURES, True),
    "metadata + intensity, grouped by project": (METADATA_FEATURES + INTENSITY_FEATURES, False),
    "temporal": (TEMPORAL_FEATURES, True),
    "all hand-made features": (METADATA_FEATURES + INTENSITY_FEATURES + TEMPORAL_FEATURES, True),
}
MCC_LIMIT = 0.3


def _run(argv: list[str]) -> float:
    tic = time.monotonic()
    print(f"## {' '.join(argv)}", flush=True)
    subprocess.run(argv, check=True)
    return time.monotonic() - tic


def _synth(out: Path, n_train: int, n_test: int, args: argparse.Namespace) -> None:
    if not (out / "test_labels.csv").exists():
        _run(["stalltriage", "synth", str(out), "--n-train", str(n_train), "--n-test", str(n_test), "--seed",
              str(args.seed), "--stall-rate", str(args.stall_rate), "--profile", args.profile, "--workers", "2"])


def leak_check(args: argparse.Namespace) -> dict:
    """Hand-made features on ``args.n_train`` stacks; the scores of every feature set."""
    data = args.out / "leak"
    _synth(data, args.n_train, 0, args)
    features = data / "features.csv"
    if not features.exists():
        handmade_features(data).to_csv(features, index=False)
    frame = pd.read_csv(features)
    results = {name: leak_scores(frame, columns, with_project) for name, (columns, with_project)
               in FEATURE_SETS.items()}
    single = {c: float(max(roc_auc_score(frame.stalled, frame[c]), 1 - roc_auc_score(frame.stalled, frame[c])))
              for c in TEMPORAL_FEATURES}
    print(f"\n{len(frame)} stacks, {int(frame.stalled.sum())} stalled\n")
    print("| features | model | AUC | MCC |\n|---|---|---|---|")
    for name, scores in results.items():
        for model, s in scores.items():
            print(f"| {name} | {model} | {s['auc']:.3f} | {s['mcc']:.3f} |")
    print("\nsingle temporal statistics, AUC either way: " + ", ".join(f"{c} {v:.3f}" for c, v in single.items()))
    return {"sets": results, "single_auc": single, "stacks": len(frame), "stalled": int(frame.stalled.sum())}


def learn_check(args: argparse.Namespace) -> dict:
    """The project's chain on a small set; test AUC and MCC overall and by difficulty."""
    root = args.out / "learn"
    data = root / "data"
    common = ["--data-dir", str(root), "--db", f"sqlite:///{root / 'db.sqlite'}", "--store", str(root / "store")]
    timings = {}
    _synth(data, args.learn_train, args.learn_test, args)
    run = root / "run"
    if not (run / "threshold.json").exists():
        timings["db_s"] = _run(["stalltriage", "db", "upgrade", *common])
        for split in ("train", "test"):
            labels = ["--labels", str(data / "train_labels.csv")] if split == "train" else []
            timings[f"ingest_{split}_s"] = _run(["stalltriage", "ingest", str(data / split), "--metadata",
                                                 str(data / f"{split}_metadata.csv"), *labels, "--workers", "2",
                                                 "--no-progress", *common])
        timings["train_s"] = _run(["stalltriage", "train", "--out", str(run), "--time-budget",
                                   str(args.time_budget), *common])
    predictions = root / "predictions_test.csv"
    timings["predict_s"] = _run(["stalltriage", "predict", "--model", str(run), "--out", str(predictions), *common])
    scored = pd.read_csv(predictions)
    truth = pd.read_csv(data / "test_labels.csv")
    level = {job.filename: job.difficulty for job in
             (make_job(args.seed, "test", i, stall_rate=args.stall_rate, profile=args.profile)
              for i in range(args.learn_test))}
    frame = truth.merge(scored, on="filename")
    frame["difficulty"] = frame.filename.map(level)
    threshold = float(json.loads((run / "threshold.json").read_text())["threshold"])
    rows = {}
    for name, part in (("all", frame), ("easy (difficulty < 0.3)", frame[frame.difficulty < 0.3]),
                       ("hard (difficulty >= 0.3)", frame[frame.difficulty >= 0.3])):
        y, p = part.stalled.to_numpy(), part.probability.to_numpy()
        ok = 0 < y.sum() < len(y)
        rows[name] = {"stacks": len(part), "stalled": int(y.sum()),
                      "auc": float(roc_auc_score(y, p)) if ok else float("nan"),
                      "mcc": float(matthews_corrcoef(y, p >= threshold)) if ok else float("nan")}
    print(f"\n| test stacks | n | stalled | AUC | MCC at the run's threshold ({threshold:.3f}) |\n|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['stacks']} | {r['stalled']} | {r['auc']:.3f} | {r['mcc']:.3f} |")
    return {"test": rows, "threshold": threshold, "timings_s": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-out/synth-check"))
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--n-train", type=int, default=600, help="stacks for the leak check (default 600)")
    parser.add_argument("--stall-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--learn", action="store_true", help="also run the learnability check")
    parser.add_argument("--learn-train", type=int, default=400)
    parser.add_argument("--learn-test", type=int, default=200)
    parser.add_argument("--time-budget", type=float, default=8.0, help="training minutes (default 8)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"profile": args.profile, "seed": args.seed, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "loadavg": Path("/proc/loadavg").read_text().split()[:3], "leak": leak_check(args)}
    if args.learn:
        summary["learn"] = learn_check(args)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    worst = max(s["mcc"] for scores in summary["leak"]["sets"].values() for s in scores.values())
    sys.exit(0 if np.isfinite(worst) and worst < MCC_LIMIT else 1)


if __name__ == "__main__":
    main()
