"""Model quality on held-out synthetic data: synth → ingest → train → predict → test metrics.

    python -m bench.quality [--out bench-out/quality] [--n-train 2000] [--n-test 2000] [--seed 7]
                            [--train-stall-rate 0.2] [--test-stall-rate 0.05] [--profile NAME]
                            [--time-budget 30] [--threads 2] [--train-stacks N]
                            [-- extra `stalltriage train` options]

Training and test stacks come from two `stalltriage synth` calls (``data/`` and ``data-test/``), so
the test split can have the rarer stalls of a lab's new stacks (5 %) while training sees about 20 %.

The test split is never used for training, model selection or the threshold: the threshold is the
run's own, chosen on out-of-fold predictions. Training uses the same code and defaults as
``stalltriage train`` (the options after ``--`` are parsed by that command's parser); records come
from the competition CSVs here, so the benchmark does not depend on the database. Steps already
done in ``--out`` (data, store, a finished run) are reused, so a rerun only repeats what is
missing. Prints Markdown tables (the run's metrics; test AUC per hard case of the generator, to see
where the model fails) and writes ``results.json`` in the run directory. ``--train-stacks N`` trains
on a random N of the training stacks (stratified by label), the same test side: a learning curve
over the training set's size.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from core.labels.competition import read_labels, read_metadata
from core.labels.records import StackRecord
from core.model.predict import predict_stacks
from core.model.rundir import RunDir
from core.synth.generator import make_job
from core.video.store import VolumeStore, key_for
from training.config import config_from_args
from training.cv import train_cv
from training.evaluation import best_mcc_threshold, score_report
from triage_app.commands import train as train_command


def stored_only(records: list[StackRecord], store: Path) -> list[StackRecord]:
    """The records whose stack is in the store (ingest reports the files it could not read)."""
    with VolumeStore(store, readonly=True) as volumes:
        kept = [r for r in records if r.key in volumes]
    if len(kept) < len(records):
        print(f"{len(records) - len(kept)} of {len(records)} stacks are not in the store (failed ingest): left out")
    return kept


def subset(records: list[StackRecord], n: int | None, seed: int) -> list[StackRecord]:
    """A random ``n`` of ``records``, stratified by label (unlabelled ones as their own stratum); all for None."""
    if n is None or n >= len(records):
        return records
    strata = [-1 if r.label is None else r.label for r in records]
    kept, _ = train_test_split(records, train_size=n, stratify=strata, random_state=seed)
    return kept


def records_from_csvs(data: Path) -> list[StackRecord]:
    """Training records with labels and crowd answers, test records without labels."""
    labels = {row.filename: row.stalled for row in read_labels(data / "train_labels.csv").rows}
    records = [StackRecord(r.filename, key_for(r.filename), r.project_id, "train", labels.get(r.filename),
                           r.crowd_score, bool(r.tier1)) for r in read_metadata(data / "train_metadata.csv").rows]
    records += [StackRecord(r.filename, key_for(r.filename), r.project_id, "test")
                for r in read_metadata(data / "test_metadata.csv").rows]
    return records


STALLED_CASES = ("partial", "stall_depth", "plug")  # hard ways to be stalled: ranked against every flowing stack
FLOWING_CASES = ("slow", "sparse")  # hard ways to flow: ranked against every stalled stack


def auc_by_case(frame: pd.DataFrame, n_test: int, seed: int, stall_rate: float, profile: str | None) -> list[dict]:
    """Test AUC per hard case of the generator (``core.synth.generator.make_job`` redrawn from the test split's seed).

    A nuisance (low contrast, few informative slices, a neighbour …) is scored on the stacks that hold
    it; a hard way to be stalled (or to flow) on those stacks against every flowing (stalled) one.
    ``clean`` is the stacks without any hard case.
    """
    drawn = (make_job(seed, "test", i, stall_rate=stall_rate, profile=profile or "realistic") for i in range(n_test))
    jobs = {job.filename: job for job in drawn}
    hard = frame["filename"].map(lambda name: jobs[name].hard)
    y, p = frame["label"].to_numpy(), frame["probability"].to_numpy()
    rows = []
    cases = ["clean"] + sorted({h for hs in hard for h in hs})
    for case in cases:
        holds = hard.map(len).eq(0) if case == "clean" else hard.map(lambda hs, c=case: c in hs)
        rank = holds | (y == (0 if case in STALLED_CASES else 1)) if case in STALLED_CASES + FLOWING_CASES else holds
        if len(set(y[rank.to_numpy()])) == 2:
            rows.append({"case": case, "stacks": int(holds.sum()), "stalled": int(y[holds.to_numpy()].sum()),
                         "auc": float(roc_auc_score(y[rank.to_numpy()], p[rank.to_numpy()]))})
    return rows


def low_tail(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The stall scores that limit automation: the 1 % and 5 % quantiles of the stalled stacks' scores
    beside the flowing stacks' median (the target: the first above the last)."""
    return {"stalled_q01": float(np.quantile(scores[labels == 1], 0.01)),
            "stalled_q05": float(np.quantile(scores[labels == 1], 0.05)),
            "flowing_median": float(np.median(scores[labels == 0]))}


def _step(name: str, argv: list[str]) -> float:
    tic = time.monotonic()
    print(f"## {name}: {' '.join(argv)}", flush=True)
    subprocess.run(argv, check=True)
    return time.monotonic() - tic


def train_options(extra: list[str]):
    """The TrainConfig that `stalltriage train --out X <extra>` would use."""
    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers())
    return config_from_args(parser.parse_args(["train", "--out", "unused", *extra]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-out/quality"))
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-stall-rate", type=float, default=0.2)
    parser.add_argument("--test-stall-rate", type=float, default=0.05)
    parser.add_argument("--profile", default=None, help="`stalltriage synth --profile` (default: synth's)")
    parser.add_argument("--time-budget", type=float, default=30.0, help="training minutes (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--run-name", default=None, help="run directory name (default run-<budget>min)")
    parser.add_argument("--train-stacks", type=int, default=None,
                        help="train on a random N of the training stacks (a learning curve; default all)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: more `stalltriage train` options")
    args = parser.parse_args()
    extra = [a for a in args.train_args if a != "--"]
    torch.set_num_threads(args.threads)
    data, test_data, store = args.out / "data", args.out / "data-test", args.out / "store"
    profile = [] if args.profile is None else ["--profile", args.profile]
    timings = {}
    for split, where, n_train, n_test, rate, seed in (
            ("train", data, args.n_train, 0, args.train_stall_rate, args.seed),
            ("test", test_data, 0, args.n_test, args.test_stall_rate, args.seed + 1)):
        if not (where / f"{split}_labels.csv").exists():
            timings[f"synth_{split}_s"] = _step(f"synth {split}", [
                "stalltriage", "synth", str(where), "--n-train", str(n_train), "--n-test", str(n_test),
                "--stall-rate", str(rate), "--seed", str(seed), "--workers", "2", *profile])
        timings[f"ingest_{split}_s"] = _step(f"ingest {split}", [
            "stalltriage", "ingest", str(where / split), "--metadata", str(where / f"{split}_metadata.csv"),
            "--store", str(store), "--db", f"sqlite:///{args.out / 'ingest.db'}", "--workers", "2", "--no-progress"])
    records = subset([r for r in records_from_csvs(data) if r.split == "train"], args.train_stacks, args.seed)
    records += [r for r in records_from_csvs(test_data) if r.split == "test"]
    records = stored_only(records, store)
    config = train_options(extra + ["--time-budget", str(args.time_budget)])
    run = RunDir(args.out / (args.run_name or f"run-{args.time_budget:g}min"))
    tic = time.monotonic()
    command = f"bench/quality.py --time-budget {args.time_budget} {' '.join(extra)}".strip()
    oof = train_cv(records, store, run.root, config, command=command) if not run.is_complete() else \
        run.read_json(run.threshold)["oof"]
    timings["train_s"] = time.monotonic() - tic
    test = [r for r in records if r.split == "test"]
    tic = time.monotonic()
    frame = predict_stacks(run.root, test, store)
    timings["predict_s"] = time.monotonic() - tic
    truth = pd.read_csv(test_data / "test_labels.csv").set_index("filename")["stalled"]
    y = truth.loc[frame["filename"]].to_numpy()
    result = score_report(y, frame["probability"].to_numpy(), frame.attrs["threshold"])
    result["best_threshold"], result["best_mcc"] = best_mcc_threshold(y, frame["probability"].to_numpy())
    tail = low_tail(y, frame["probability"].to_numpy())
    frame = frame.assign(label=y)
    cases = auc_by_case(frame, args.n_test, args.seed + 1, args.test_stall_rate, args.profile)
    summary = {"test": result, "oof": oof, "by_case": cases, "timings_s": timings, "test_stacks": len(test),
               "test_stalled": int(y.sum()), "low_tail": tail, "config": config.as_dict(), "threads": args.threads,
               "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "run_dir": str(run.root),
               "train_minutes_measured": pd.read_csv(run.metrics).groupby("fold")["seconds"].max().sum() / 60}
    (run.root / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    frame.to_csv(run.root / "test_predictions.csv", index=False)
    print("\n| set | stacks | AUC | MCC | sensitivity | specificity | threshold |\n|---|---|---|---|---|---|---|")
    n_train = run.read_json(run.config)["data"]["stacks"]
    for name, rep, n in (("out-of-fold (train)", oof, n_train), ("held-out test", result, len(test))):
        print(f"| {name} | {n} | {rep['auc']:.4f} | {rep['mcc']:.4f} | {rep['sensitivity']:.4f} | "
              f"{rep['specificity']:.4f} | {rep['threshold']:.4f} |")
    print("\n| test stacks with | stacks | stalled | AUC |\n|---|---|---|---|")
    for row in cases:
        print(f"| {row['case']} | {row['stacks']} | {row['stalled']} | {row['auc']:.3f} |")
    print(f"\ntest MCC at the best threshold for these stacks: {result['best_mcc']:.4f} (at "
          f"{result['best_threshold']:.4f}); the low tail: " + ", ".join(f"{k} {v:.4f}" for k, v in tail.items()))
    print(f"\ntimings: {json.dumps({k: round(v, 1) for k, v in timings.items()})}; "
          f"training {summary['train_minutes_measured']:.1f} min measured")
    sys.exit(0 if np.isfinite(result["auc"]) else 1)


if __name__ == "__main__":
    main()
