"""What averaging finished runs buys: their out-of-fold and test scores averaged stack by stack.

    python -m bench.average_runs RUN_DIR RUN_DIR [...] --out AVERAGED_DIR

Each RUN_DIR is a finished ``bench.quality`` run on the same data (``oof.csv``, ``test_predictions.csv``
with the test truth). Every run scores a stack with networks that never trained on it, so the average
is still an out-of-sample score: an ensemble of independent cross-fitted runs at the runs' total
minutes, the most a second network per stack can add. Prints the averaged scores' metrics beside each
run's and writes ``AVERAGED_DIR`` as a run directory ``bench.promise_run`` reads (the first run's
``config.json`` and ``metrics.csv``; the threshold re-chosen on the averaged out-of-fold scores).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from bench.guarantee import markdown
from bench.quality import low_tail
from core.model.rundir import RunDir
from training.evaluation import best_mcc_threshold, score_report

SCORED = ("oof.csv", "test_predictions.csv")


def average_scores(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The first frame with ``probability`` replaced by the mean over all frames, matched by filename.

    Raises
    ------
    ValueError
        If the frames do not hold the same stacks.
    """
    indexed = [frame.set_index("filename") for frame in frames]
    if any(set(frame.index) != set(indexed[0].index) for frame in indexed):
        raise ValueError("the runs did not score the same stacks")
    mean = sum(frame["probability"].loc[indexed[0].index] for frame in indexed) / len(indexed)
    return indexed[0].assign(probability=mean).reset_index()


def summary(oof: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Out-of-fold and test AUC, test MCC at the out-of-fold threshold and at the test's best, the low tail."""
    threshold, _ = best_mcc_threshold(oof["label"], oof["probability"])
    report = score_report(test["label"], test["probability"], threshold)
    return {"oof_auc": score_report(oof["label"], oof["probability"], threshold)["auc"], "test_auc": report["auc"],
            "test_mcc": report["mcc"], "test_best_mcc": best_mcc_threshold(test["label"], test["probability"])[1],
            "threshold": threshold, **low_tail(test["label"].to_numpy(), test["probability"].to_numpy())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="finished bench.quality run directories")
    parser.add_argument("--out", type=Path, required=True, help="where the averaged run directory goes")
    args = parser.parse_args()
    runs = [RunDir(path) for path in args.runs]
    scored = {name: [pd.read_csv(run.root / name) for run in runs] for name in SCORED}
    args.out.mkdir(parents=True, exist_ok=True)
    averaged = {name: average_scores(frames) for name, frames in scored.items()}
    for name, frame in averaged.items():
        frame.to_csv(args.out / name, index=False)
    shutil.copy(runs[0].config, args.out / runs[0].config.name)
    shutil.copy(runs[0].metrics, args.out / runs[0].metrics.name)
    together = summary(averaged["oof.csv"], averaged["test_predictions.csv"])
    out = RunDir(args.out)
    out.write_json(out.threshold, {"threshold": together["threshold"],
                                   "chosen_by": "max MCC on the averaged out-of-fold scores"})
    rows = [{"run": str(run.root), **summary(oof, test)}
            for run, oof, test in zip(runs, scored["oof.csv"], scored["test_predictions.csv"])]
    rows.append({"run": f"average of {len(runs)}", **together})
    print(markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
