"""One trained run end to end: tune each promise on its out-of-fold reference, apply it to the run's
new stacks, and read the realised rates against their hidden truth and crowd-like human answers.

    python -m bench.promise_run --run bench-out/quality/run-30min --seed 8 --n-test 2000 --stall-rate 0.05

``--run`` is a finished ``bench.quality`` run directory (``oof.csv``: the reference, labelled as the
product reads ``train_labels.csv``; ``test_predictions.csv``: the new stacks' scores and hidden truth).
The new stacks' human answers are their crowd's, redrawn from the generator (``core.synth.generator.make_job``
with the test side's ``--seed``, ``--n-test``, ``--stall-rate`` and ``--profile``, as ``bench.quality``
drew them): "stalled" where at least half the crowd said so. The tuning is the product's own
(``triage_app.tuning.tune``, the code behind ``stalltriage tune``), with the new stacks' scores for
the stall-share check.

Per promise: the thresholds, the automatic share of the new stacks, the realised *relative* rates
(the share of the crowd's "stalled" / "flowing" answers on the new stacks that the automatic decisions
change) and the realised *absolute* rates (the combined labels, model where automatic and the crowd's
answer where routed, against the truth), beside the promised bounds and the crowd alone.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from bench.guarantee import markdown
from core.model.rundir import RunDir
from core.policy.triage import Decision, decide
from core.synth.generator import make_job
from triage_app import tuning

TARGETS = {"sensitivity": 0.99, "specificity": 0.95, "confidence": 0.95}


def crowd_answers(filenames: pd.Series, *, seed: int, n_test: int, stall_rate: float, profile: str) -> pd.Series:
    """The crowd's majority answer (1 = stalled) per new stack, redrawn from the generator."""
    jobs = (make_job(seed, "test", i, stall_rate=stall_rate, profile=profile) for i in range(n_test))
    answers = {job.filename: int(job.crowd_score >= 0.5) for job in jobs}
    return filenames.map(answers)


def rates(truth: np.ndarray, crowd: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    """Realised relative (against the crowd) and absolute (combined labels against the truth) rates."""
    combined = np.where(decision == Decision.HUMAN, crowd, decision)
    return {"automatic": float((decision != Decision.HUMAN).mean()),
            "relative sens": 1 - float(((crowd == 1) & (decision == Decision.FLOWING)).sum() / (crowd == 1).sum()),
            "relative spec": 1 - float(((crowd == 0) & (decision == Decision.STALLED)).sum() / (crowd == 0).sum()),
            "absolute sens": float((combined[truth == 1] == 1).mean()),
            "absolute spec": float((combined[truth == 0] == 0).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished bench.quality run directory")
    parser.add_argument("--seed", type=int, required=True, help="the test side's synth seed")
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--stall-rate", type=float, default=0.05)
    parser.add_argument("--profile", default="realistic")
    args = parser.parse_args()
    load, started = os.getloadavg()[0], time.monotonic()
    run = RunDir(args.run)
    reference = pd.read_csv(run.oof)[["filename", "label", "probability"]].dropna()
    new = pd.read_csv(run.root / "test_predictions.csv")
    truth = new["label"].to_numpy(int)
    crowd = crowd_answers(new["filename"], seed=args.seed, n_test=args.n_test, stall_rate=args.stall_rate,
                          profile=args.profile).to_numpy(int)
    rows = [{"policy": "crowd alone", **rates(truth, crowd, np.full(len(new), Decision.HUMAN))}]
    for promise in ("relative", "absolute"):
        outcome = tuning.tune(reference.assign(project_id="all"), known=None, promise=promise,
                              new_scores=new["probability"].to_numpy(float), **TARGETS)
        report = outcome.tuned.report_
        decision = decide(new["probability"].to_numpy(float), outcome.tuned.t_low_, outcome.tuned.t_high_)
        rows.append({"policy": f"{promise} (t_low {report.t_low}, t_high {report.t_high})",
                     "promised sens": report.sensitivity_lower, "promised spec": report.specificity_lower,
                     "meets targets": outcome.tuned.feasible_, "automatic (reference)": report.auto_share,
                     **rates(truth, crowd, decision),
                     "share check": None if outcome.share is None else outcome.share.describe()})
    table = pd.DataFrame(rows)
    print(f"run {args.run}: reference {len(reference)} stacks ({int(reference['label'].sum())} stalled), new "
          f"{len(new)} ({int(truth.sum())} stalled, crowd says {int(crowd.sum())}); targets {TARGETS}; "
          f"load {load:.1f} at the start, {time.monotonic() - started:.0f} s, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown(table.drop(columns="share check")))
    for row in rows[1:]:
        print(f"- {row['policy'].split(' ')[0]}: {row['share check']}")


if __name__ == "__main__":
    main()
