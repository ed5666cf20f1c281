"""The active-learning loop measured: reviews answered by a simulated reviewer, retrain, re-tune, per queue order.

    python -m bench.active [--out bench-out/active] [--n-labelled 300] [--n-pool 600] [--n-test 600]
                           [--stall-rate 0.1] [--rounds 3] [--reviews 200] [--orders boundary,uncertainty,random,control]
                           [--base-budget 4] [--round-budget 3 | --round-epochs E] [--reviewer-sensitivity 0.9]
                           [--reviewer-specificity 0.95] [--profile realistic] [--threads 2]

Synthetic stacks (``core.synth.generator.generate``): a small labelled training side, an unlabelled pool
that reviewers work through, and a test side nobody trains or tunes on. A base run is trained on
the labelled side (``stalltriage train --no-reviews``) and scores everything. Then, per queue
order, on its own copy of the database: each round a simulated reviewer (known sensitivity and
specificity, answering from the truth) answers ``--reviews`` stacks that the real queue
(``db.queue.claim_next`` with that order) serves; the run is warm-started from the previous
round's run on crowd + reviewed labels within ``--round-budget`` minutes (the code path of
``stalltriage retrain``), scores the pool and the labelled side, and is tuned for sensitivity
0.99 / specificity 0.95 at 95 % confidence (``triage_app.retraining.tune_and_activate``, human
error from the prior). When that refuses the new run (bounds missed or less automatic) the bench
still hands the queue the new run's scores (policy: everything to humans), so the next round's
order ranks by the newest model; the table says whether the tuner would have activated it.

Per round: test AUC and MCC (the run's own threshold), the automatic share the tuned policy
promises on its reference at the targets, the automatic share an oracle could reach on the test
side with the targets met by point estimate (the model's triage value, independent of how few
stalls the reference holds), human reviews spent. Results: ``results.json`` and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.labels.records import StackRecord
from core.model.predict import predict_stacks
from core.model.rundir import RunDir
from core.synth.generator import generate
from core.video.store import key_for
from db.engine import make_engine, make_session_factory
from db.known_answers import set_known_answer_rate
from db.models import ModelRun, User
from db.policy import save_policy
from db.queue import claim_next, submit_review
from db.recording import record_predictions
from db.training_labels import training_records
from db.vessels import stack_records
from training.cv import train_cv
from training.evaluation import score_report
from training.warmstart import continuation_config
from triage_app.retraining import tune_and_activate

TARGETS = {"target_sensitivity": 0.99, "target_specificity": 0.95, "confidence": 0.95}


def _cli(*argv: str) -> None:
    print("##", " ".join(argv), flush=True)
    subprocess.run(["stalltriage", *argv], check=True)


def prepare(args: argparse.Namespace) -> tuple[Path, Path, pd.Series]:
    """Synthetic data, the store, a base database (labelled + pool stacks), the base run; returns the
    database file, the store and the truth of every test-side stack."""
    data, store, db_file = args.out / "data", args.out / "store", args.out / "base.db"
    if not (data / "test_labels.csv").exists():
        generate(data, args.n_labelled, args.n_pool + args.n_test, args.seed, stall_rate=args.stall_rate,
                 profile=args.profile, workers=args.threads, progress=False)
    truth = pd.read_csv(data / "test_labels.csv").set_index("filename")["stalled"]
    meta = pd.read_csv(data / "test_metadata.csv")
    for part, names in (("pool", truth.index[:args.n_pool]), ("heldout", truth.index[args.n_pool:])):
        (data / part).mkdir(exist_ok=True)
        meta[meta["filename"].isin(names)].to_csv(data / f"{part}_metadata.csv", index=False)
        for name in names:
            if not (data / part / name).exists():
                (data / part / name).symlink_to((data / "test" / name).resolve())
    if not db_file.exists():
        common = ["--db", f"sqlite:///{db_file}", "--store", str(store)]
        _cli("db", "upgrade", *common)
        _cli("ingest", str(data / "train"), "--metadata", str(data / "train_metadata.csv"), "--labels",
             str(data / "train_labels.csv"), "--workers", str(args.threads), "--no-progress", *common)
        _cli("ingest", str(data / "pool"), "--metadata", str(data / "pool_metadata.csv"), "--workers",
             str(args.threads), "--no-progress", *common)
        held = args.out / "heldout.db"
        _cli("ingest", str(data / "heldout"), "--metadata", str(data / "heldout_metadata.csv"), "--workers",
             str(args.threads), "--no-progress", "--db", f"sqlite:///{held}", "--store", str(store))
        base = args.out / "run-r0"
        _cli("train", "--out", str(base), "--time-budget", str(args.base_budget), "--no-reviews",
             "--threads", str(args.threads), *common)
        _cli("predict", "--model", str(base), "--split", "all", *common)
        engine = make_engine(f"sqlite:///{db_file}")
        with make_session_factory(engine).begin() as session:
            run_id = session.query(ModelRun.id).scalar()
            save_policy(session, model_run_id=run_id, t_low=None, t_high=None, created_by="bench", **TARGETS)
            set_known_answer_rate(session, rate=0.0, actor="bench")
            session.add(User(name="sim", password_hash="!", role="reviewer"))
        engine.dispose()
    return db_file, store, truth


def test_metrics(run_dir: Path, store: Path, truth: pd.Series, test_names: list[str]) -> dict:
    """Test AUC/MCC at the run's threshold and the oracle automatic share at the targets (point estimates)."""
    records = [StackRecord(n, key_for(n), "", "test") for n in test_names]
    frame = predict_stacks(run_dir, records, store, progress=False)
    p, y = frame["probability"].to_numpy(), truth.loc[test_names].to_numpy()
    report = score_report(y, p, frame.attrs["threshold"])
    return {"auc": report["auc"], "mcc": report["mcc"], "oracle_auto_share": oracle_auto_share(p, y)}


def oracle_auto_share(p: np.ndarray, y: np.ndarray, sensitivity: float = 0.99, specificity: float = 0.95) -> float:
    """Largest share of stacks two thresholds decide automatically with the combined labels (humans
    perfect elsewhere) meeting the targets on these very stacks: the model's triage value."""
    order = np.sort(np.unique(p))
    n_pos, n_neg, best = max(int(y.sum()), 1), max(int((1 - y).sum()), 1), 0.0
    for t_low in np.concatenate([[-1.0], order]):
        missed = int(((p <= t_low) & (y == 1)).sum())
        if 1 - missed / n_pos < sensitivity:
            break
        high = order[order > t_low]
        for t_high in np.concatenate([high, [2.0]]):
            false_alarms = int(((p >= t_high) & (y == 0)).sum())
            if 1 - false_alarms / n_neg >= specificity:
                best = max(best, float(((p <= t_low) | (p >= t_high)).mean()))
                break
    return best


def review_round(factory, order: str, reviews: int, truth: pd.Series, rng: random.Random,
                 sensitivity: float, specificity: float) -> int:
    """The simulated reviewer answers up to ``reviews`` stacks the queue serves in ``order``."""
    done = 0
    with factory.begin() as session:
        user_id = session.query(User.id).filter(User.name == "sim").scalar()
    while done < reviews:
        with factory.begin() as session:
            stack = claim_next(session, user_id=user_id, order=order, rng=rng)
            if stack is None:
                break
            stalled = bool(truth[stack.filename])
            right = rng.random() < (sensitivity if stalled else specificity)
            answer = "stalled" if stalled == right else "flowing"
            submit_review(session, user_id=user_id, vessel_id=stack.vessel_id, answer=answer)
        done += 1
    return done


def retrain_round(factory, store: Path, previous: Path, out: Path, budget: float | None,
                  epochs: int | None) -> tuple[int, dict]:
    """Warm-start from ``previous`` on crowd + reviewed labels, score, record, tune; returns (run id, outcome)."""
    with factory() as session:
        records = training_records(session)
        everything = stack_records(session)
    config = continuation_config(previous, time_budget_min=budget, epochs=epochs, device="cpu")
    train_cv(records, store, out, config, command=f"bench/active.py round ({budget} min)")
    frame = predict_stacks(out, everything, store, progress=False)
    layout = RunDir(out)
    with factory.begin() as session:
        record_predictions(session, name=str(out.resolve()), config=layout.read_json(layout.config),
                           threshold=layout.read_json(layout.threshold), predictions=frame, source=str(out))
        run_id = session.query(ModelRun.id).filter(ModelRun.name == str(out.resolve())).scalar()
    with factory.begin() as session:
        outcome = tune_and_activate(session, model_run_id=run_id, actor="bench")
        if not outcome.activated:  # the queue still ranks by the newest scores (see the module docstring)
            save_policy(session, model_run_id=run_id, t_low=None, t_high=None, created_by="bench", **TARGETS)
    return run_id, {"activated": outcome.activated, "reason": outcome.reason,
                    "promised_auto_share": outcome.new_auto_share or 0.0}


CONTROL = "control"  # the same rounds of retraining with no new reviews: what reviews add is the difference


def run_order(args: argparse.Namespace, order: str, db_file: Path, store: Path, truth: pd.Series,
              test_names: list[str], base_metrics: dict) -> list[dict]:
    """Every round of one queue order on its own copy of the base database."""
    copy = args.out / f"{order}.db"
    shutil.copyfile(db_file, copy)
    engine = make_engine(f"sqlite:///{copy}")
    factory = make_session_factory(engine)
    rng = random.Random(args.seed)
    rows = [{"order": order, "round": 0, "reviews": 0, **base_metrics, "promised_auto_share": 0.0,
             "activated": None, "minutes": 0.0}]
    previous, spent = args.out / "run-r0", 0
    for round_ in range(1, args.rounds + 1):
        tic = time.monotonic()
        if order != CONTROL:
            spent += review_round(factory, order, args.reviews, truth, rng, args.reviewer_sensitivity,
                                  args.reviewer_specificity)
        out = args.out / f"run-{order}-r{round_}"
        budget = None if args.round_epochs else args.round_budget
        _, outcome = retrain_round(factory, store, previous, out, budget, args.round_epochs)
        metrics = test_metrics(out, store, truth, test_names)
        rows.append({"order": order, "round": round_, "reviews": spent, **metrics, **outcome,
                     "minutes": (time.monotonic() - tic) / 60})
        print(json.dumps(rows[-1], default=float), flush=True)
        previous = out
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-out/active"))
    parser.add_argument("--n-labelled", type=int, default=300)
    parser.add_argument("--n-pool", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=600)
    parser.add_argument("--stall-rate", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reviews", type=int, default=200, help="reviews per round (default 200)")
    parser.add_argument("--orders", default=f"boundary,uncertainty,random,{CONTROL}",
                        help=f"queue orders to compare; {CONTROL!r} retrains each round without new reviews")
    parser.add_argument("--base-budget", type=float, default=4.0, help="minutes for the base run (default 4)")
    parser.add_argument("--round-budget", type=float, default=3.0, help="minutes per retrain (default 3)")
    parser.add_argument("--round-epochs", type=int, default=None,
                        help="a fixed number of epochs per fold and round instead of --round-budget: the same work "
                             "every round whatever the machine's load (compare with --reviews 0 as the control)")
    parser.add_argument("--reviewer-sensitivity", type=float, default=0.9)
    parser.add_argument("--reviewer-specificity", type=float, default=0.95)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    db_file, store, truth = prepare(args)
    test_names = list(truth.index[args.n_pool:])
    base_metrics = test_metrics(args.out / "run-r0", store, truth, test_names)
    rows = [row for order in args.orders.split(",")
            for row in run_order(args, order, db_file, store, truth, test_names, base_metrics)]
    table = pd.DataFrame(rows)
    summary = {"rows": rows, "args": {k: str(v) for k, v in vars(args).items()},
               "machine": f"{platform.node()} ({os.cpu_count()} CPUs)", "loadavg_end": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "minutes": (time.monotonic() - started) / 60}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    columns = ["order", "round", "reviews", "auc", "mcc", "promised_auto_share", "oracle_auto_share", "activated",
               "minutes"]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in table[columns].itertuples(index=False):
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    print(f"total {summary['minutes']:.1f} min; load average at the end {summary['loadavg_end']}")


if __name__ == "__main__":
    main()
