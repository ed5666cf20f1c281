"""What second looks at likely crowd errors buy: the default policy tuned on the crowd's answers, on
those answers with the flagged ones looked at again, and on the truth, applied to the new stacks.

    python -m bench.second_look --data bench-out/quality/data --run bench-out/quality/run-30min
                                --test-seed 8 [--seed 7] [--stall-rate 0.2] [--n-test 2000]
                                [--test-stall-rate 0.05] [--profile realistic]

``--data`` and ``--run`` are a ``bench.quality`` run's training side and run directory, as for
``bench.crowd_errors`` (whose ``training_side`` recovers each stack's crowd answer and truth). The
reference a lab has is the crowd's answers (``crowd_score >= 0.5``). The second look is simulated as
an admin who answers the truth on every stack ``core.labels.crowd_errors`` flags (the product's default
rule); ``--admin-error`` makes that admin wrong on a share of them instead, drawn at random. Each
reference is tuned with the product's own code (``triage_app.tuning.tune``, relative promise at
0.99 / 0.95 / 95 %) and applied to the run's new stacks (``test_predictions.csv``), whose crowd
answers are redrawn as ``bench.promise_run`` does. Prints Markdown: thresholds, automatic share,
the realised rates against the new stacks' crowd answers and against their truth.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.crowd_errors import training_side
from bench.guarantee import markdown
from bench.promise_run import TARGETS, crowd_answers, rates
from core.labels.crowd_errors import find_crowd_errors
from core.model.rundir import RunDir
from core.policy.triage import decide
from triage_app import tuning


def references(stacks: pd.DataFrame, *, admin_error: float, rng: np.random.Generator) -> dict[str, pd.Series]:
    """The reference labels compared: the crowd's, after second looks at the flagged stacks, the truth."""
    flagged = stacks["filename"].isin(find_crowd_errors(stacks)["filename"])
    wrong = flagged & (rng.random(len(stacks)) < admin_error)
    looked = stacks["label"].where(~flagged, np.where(wrong, 1 - stacks["truth"], stacks["truth"]))
    return {"crowd answers (what a lab has)": stacks["label"],
            f"second looks at the {int(flagged.sum())} flagged": looked.astype(int),
            "the truth (every crowd error fixed)": stacks["truth"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="the synth folder of the training side")
    parser.add_argument("--run", type=Path, required=True, help="the run directory (oof.csv, test_predictions.csv)")
    parser.add_argument("--seed", type=int, default=7, help="synth seed of the training side (default 7)")
    parser.add_argument("--stall-rate", type=float, default=0.2, help="its --stall-rate (default 0.2)")
    parser.add_argument("--test-seed", type=int, required=True, help="synth seed of the new stacks")
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--test-stall-rate", type=float, default=0.05)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--admin-error", type=float, default=0.0,
                        help="share of second looks the admin gets wrong (default 0)")
    args = parser.parse_args()
    load, started = os.getloadavg()[0], time.monotonic()
    run = RunDir(args.run)
    stacks = training_side(args.data, run, seed=args.seed, stall_rate=args.stall_rate, profile=args.profile)
    new = pd.read_csv(run.root / "test_predictions.csv")
    scores, truth = new["probability"].to_numpy(float), new["label"].to_numpy(int)
    crowd = crowd_answers(new["filename"], seed=args.test_seed, n_test=args.n_test,
                          stall_rate=args.test_stall_rate, profile=args.profile).to_numpy(int)
    rows = []
    for name, label in references(stacks, admin_error=args.admin_error, rng=np.random.default_rng(0)).items():
        reference = stacks.assign(label=label, project_id="all")
        outcome = tuning.tune(reference, known=None, promise="relative", new_scores=scores, **TARGETS)
        tuned = outcome.tuned
        realised = rates(truth, crowd, decide(scores, tuned.t_low_, tuned.t_high_))
        rows.append({"reference": name, "errors left": int((label != stacks["truth"]).sum()),
                     "stalled": int(label.sum()), "t_low": tuned.t_low_, "t_high": tuned.t_high_,
                     "meets targets": tuned.feasible_, **realised})
    print(f"run {args.run}: {len(stacks)} reference stacks ({int(stacks['truth'].sum())} truly stalled, crowd "
          f"says {int(stacks['label'].sum())}), new {len(new)} ({int(truth.sum())} stalled, crowd says "
          f"{int(crowd.sum())}); relative promise {TARGETS}; admin error {args.admin_error:g}; load {load:.1f} at "
          f"the start, {time.monotonic() - started:.0f} s, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
