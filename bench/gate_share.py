"""The project gate's cost in automatic share: a finished ``bench.quality`` run's default policy applied to its
new stacks, pooled and project by project.

    python -m bench.gate_share --out /tmp/target --run run-30min

Tunes the default (relative) promise at 0.99 / 0.95 and 95 % on the run's out-of-fold reference
(``oof.csv``), gates each project on its own reference answers (:func:`core.policy.gate.gate_projects`,
projects from ``data/train_metadata.csv``), and reports the share of the new stacks
(``test_predictions.csv``, projects from ``data-test/test_metadata.csv``) that the policy decides
without the gate and with it, and each project's standing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from core.policy.band import BandRule
from core.policy.gate import gate_projects
from core.policy.triage import TunedTriagePolicy


def with_projects(frame: pd.DataFrame, metadata: Path) -> pd.DataFrame:
    """``frame`` with each stack's ``project`` (as text) from a metadata CSV."""
    project = pd.read_csv(metadata, dtype={"project_id": str}).set_index("filename")["project_id"]
    return frame.assign(project=project.loc[frame["filename"]].fillna("").to_numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="a bench.quality --out directory")
    parser.add_argument("--run", default="run-30min", help="the run directory's name under --out")
    parser.add_argument("--sensitivity", type=float, default=0.99)
    parser.add_argument("--specificity", type=float, default=0.95)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    run = args.out / args.run
    oof = with_projects(pd.read_csv(run / "oof.csv"), args.out / "data" / "train_metadata.csv")
    new = with_projects(pd.read_csv(run / "test_predictions.csv"), args.out / "data-test" / "test_metadata.csv")
    targets = {"sensitivity": args.sensitivity, "specificity": args.specificity, "confidence": args.confidence}
    policy = TunedTriagePolicy(**targets, promise="relative").fit(oof["probability"].to_numpy(), oof["label"].to_numpy())
    t_low, t_high = policy.t_low_, policy.t_high_
    reference = oof.rename(columns={"label": "answer"})[["project", "probability", "answer"]]
    gates = {g.project: g for g in gate_projects(reference, t_low=t_low, t_high=t_high, **targets,
                                                  projects=sorted(new["project"].unique()))}
    p = new["probability"].to_numpy()
    pooled = BandRule.of(t_low, t_high)
    gated = dataclasses.replace(pooled, low_open=new["project"].map(lambda name: gates[name].low_open).to_numpy(bool),
                                high_open=new["project"].map(lambda name: gates[name].high_open).to_numpy(bool))
    print(f"t_low {t_low}, t_high {t_high}; {len(new)} new stacks in {new['project'].nunique()} projects\n")
    print(f"automatic share: pooled {np.mean(pooled.automatic(p)):.4f}, with the project gate "
          f"{np.mean(gated.automatic(p)):.4f}\n")
    print("| project | status | stalled / flowing answers | t_low open | t_high open | reason |\n|---|---|---|---|---|---|")
    for name, gate in sorted(gates.items()):
        print(f"| {name} | {gate.status} | {gate.stalled} / {gate.flowing} | {gate.low_open} | {gate.high_open} | "
              f"{gate.reason()} |")


if __name__ == "__main__":
    main()
