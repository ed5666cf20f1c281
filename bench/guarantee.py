"""Does the triage promise hold on new stacks once humans err? Coverage of the tuner's bounds.

    python -m bench.guarantee [--trials 60] [--k 3] [--oof RUN_DIR/oof.csv] [--seed 0]

Each trial simulates a labelled reference side (6,000 stacks), a fresh unlabelled side (30,000) and
known-answer stacks (one per nine fresh ones, from every score), all scored by a model with AUC
about 0.93 whose errors sit near the classes' overlap (or resampled from a run's out-of-fold
``probability``/``label`` with ``--oof``: pairs are resampled, so that run's score distribution
stands for new stacks, and the same score may appear on several sides). Simulated reviewers of known
skill (six with sensitivity 0.85-0.99 and specificity 0.90-0.99, two careless ones) err more on hard
stacks (scores near the overlap, exactly where the policy routes): a reviewer's error rate is its
base rate times 0.5 on the easiest stacks up to 2 on the hardest. Each routed or known-answer stack
gets ``--k`` reviews by distinct reviewers; routed stacks are labelled by
:class:`core.labels.skill.DawidSkene` with skills learnt from the known-answer stacks (their truth
clamped), and the human error rates the tuner uses are that rule's errors on the known-answer
stacks, each labelled by a rule fitted without its truth (``out_of_fold_labels``): the rule measured
is the rule applied.

Policies are tuned on the reference side (confidence 0.95) and applied to the fresh side; the
realised combined sensitivity and specificity (model where automatic, humans' labels elsewhere,
against the truth; human errors as their exact expectation over the reviewers' answers, so the
only noise is which stacks were drawn) are compared with the promised lower bounds:

* ``perfect``: the old tuner (humans assumed perfect);
* ``prior``: human error from the stated prior only (no known answers yet);
* ``known (all)``: human error measured on the known-answer stacks of every score (mostly easy);
* ``known (band)``: :func:`core.policy.guarantee.tune_with_known_answers`, human error measured on the
  known-answer stacks inside the policy's own routed band (they look like the routed stacks).

Coverage is the share of trials whose realised rate reaches the promised bound; a method keeps
its promise when coverage >= 0.95. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from core.labels.skill import DawidSkene, HumanErrorRates, out_of_fold_labels
from core.policy.guarantee import KnownAnswers, tune_with_known_answers
from core.policy.triage import Decision, TriageWarning, TunedTriagePolicy, decide

CONFIDENCE = 0.95
TARGETS = {"strict": (0.99, 0.95), "loose": (0.95, 0.90)}
N_REFERENCE, N_FRESH, PREVALENCE = 6000, 30000, 0.15


class Scores:
    """Draws (truth, score, hardness) for stacks: a binormal model on the logit scale, or a run's OOF."""

    def __init__(self, oof: str | None) -> None:
        self.oof = pd.read_csv(oof)[["label", "probability"]].dropna() if oof else None
        if self.oof is not None:
            logits = logit(self.oof["probability"].clip(1e-6, 1 - 1e-6))
            means = logits.groupby(self.oof["label"]).mean()
            self.middle, self.width = (means[0] + means[1]) / 2, max(float(logits.std()), 0.5)
        else:
            self.middle, self.width = -0.6, 1.5  # between the class means -2.0 and 0.8 (sd 1.3: AUC ~ 0.93)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.oof is not None:
            rows = self.oof.iloc[rng.integers(0, len(self.oof), n)]
            y, p = rows["label"].to_numpy(int), rows["probability"].to_numpy(float)
        else:
            y = (rng.random(n) < PREVALENCE).astype(int)
            p = expit(np.where(y == 1, 0.8, -2.0) + rng.normal(0, 1.3, n))
        hard = np.exp(-((logit(np.clip(p, 1e-6, 1 - 1e-6)) - self.middle) / self.width) ** 2)
        return y, p, hard


def reviewers(rng: np.random.Generator) -> pd.DataFrame:
    """Six careful reviewers and two careless ones, each with a base sensitivity and specificity."""
    careful = pd.DataFrame({"sens": rng.uniform(0.85, 0.99, 6), "spec": rng.uniform(0.90, 0.99, 6)})
    careless = pd.DataFrame({"sens": rng.uniform(0.6, 0.75, 2), "spec": rng.uniform(0.7, 0.85, 2)})
    return pd.concat([careful, careless], ignore_index=True).rename_axis("reviewer").reset_index()


def assign(rng: np.random.Generator, n: int, team: pd.DataFrame, k: int) -> np.ndarray:
    """k distinct reviewers for each of n stacks (n x k)."""
    return np.argsort(rng.random((n, len(team))), axis=1)[:, :k]


def error_rates(y: np.ndarray, hard: np.ndarray, who: np.ndarray, team: pd.DataFrame) -> np.ndarray:
    """Each reviewer's chance of a wrong answer on each stack: base rate x (0.5 + 1.5 hardness), at most 0.5."""
    base = np.where(y[:, None] == 1, 1 - team["sens"].to_numpy()[who], 1 - team["spec"].to_numpy()[who])
    return np.minimum(0.5, base * (0.5 + 1.5 * hard[:, None]))


def review(rng: np.random.Generator, stacks: np.ndarray, y: np.ndarray, hard: np.ndarray, team: pd.DataFrame,
           k: int) -> pd.DataFrame:
    """k reviews by distinct reviewers per stack, answers drawn from :func:`error_rates`."""
    who = assign(rng, len(stacks), team, k)
    wrong = rng.random(who.shape) < error_rates(y, hard, who, team)
    answer = np.where(wrong, 1 - y[:, None], y[:, None])
    return pd.DataFrame({"stack": np.repeat(stacks, k), "reviewer": who.ravel(), "answer": answer.ravel()})


def expected_label_errors(rule: DawidSkene, y: np.ndarray, hard: np.ndarray, who: np.ndarray,
                          team: pd.DataFrame) -> np.ndarray:
    """P(the rule's label is wrong) per stack, over all 2^k right/wrong answer patterns of its
    reviewers (exact, so the realised rates carry no answer-sampling noise)."""
    n, k = who.shape
    error = error_rates(y, hard, who, team)
    patterns = (np.arange(2 ** k)[:, None] >> np.arange(k)) & 1  # 1 = that review is wrong
    wrong = np.broadcast_to(patterns[None], (n, 2 ** k, k))
    chance = np.where(wrong == 1, error[:, None, :], 1 - error[:, None, :]).prod(axis=2)
    answer = np.where(wrong == 1, 1 - y[:, None, None], y[:, None, None])
    reviews = pd.DataFrame({"stack": np.repeat(np.arange(n * 2 ** k), k),
                            "reviewer": np.broadcast_to(who[:, None, :], (n, 2 ** k, k)).ravel(),
                            "answer": answer.ravel()})
    label = rule.predict(reviews).to_numpy().reshape(n, 2 ** k)
    return (chance * (label != y[:, None])).sum(axis=1)


def band(scores: np.ndarray, tuned: TunedTriagePolicy) -> np.ndarray:
    return decide(scores, tuned.t_low_, tuned.t_high_) == Decision.HUMAN


class Trial:
    """One simulated lab: reference, fresh side, known-answer stacks and a team of reviewers.

    Known-answer stacks: one per nine fresh stacks, from every score, reviewed k times. The label
    rule for routed stacks is Dawid–Skene with skills from all of them; their own labels for the
    error rates come from rules fitted without their truth (``out_of_fold_labels``).
    """

    def __init__(self, seed: int, scores: Scores, k: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.k = k
        self.ref = scores.draw(self.rng, N_REFERENCE)
        self.fresh = scores.draw(self.rng, N_FRESH)
        self.team = reviewers(self.rng)
        y, p, hard = scores.draw(self.rng, N_FRESH // 9)
        reviews = review(self.rng, np.arange(len(y)), y, hard, self.team, k)
        truth = pd.Series(y)
        self.rule = DawidSkene().fit(reviews, truth)
        labels = out_of_fold_labels(reviews, truth)
        self.known = KnownAnswers(score=p, label=labels.to_numpy(), truth=y, reviewers=None)

    def tune(self, sens: float, spec: float, humans: HumanErrorRates) -> TunedTriagePolicy:
        y, p, _ = self.ref
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TriageWarning)
            return TunedTriagePolicy(sensitivity=sens, specificity=spec, confidence=CONFIDENCE,
                                     human_errors=humans, curve_points=10).fit(p, y)

    def apply(self, tuned: TunedTriagePolicy) -> dict[str, float]:
        """Expected combined rates on the fresh side: the rule's labels for routed stacks, model elsewhere."""
        y, p, hard = self.fresh
        decision = decide(p, tuned.t_low_, tuned.t_high_)
        routed = decision == Decision.HUMAN
        wrong = (decision != y).astype(float)
        if routed.any():
            who = assign(self.rng, int(routed.sum()), self.team, self.k)
            wrong[routed] = expected_label_errors(self.rule, y[routed], hard[routed], who, self.team)
        return {"sensitivity": float(1 - wrong[y == 1].mean()), "specificity": float(1 - wrong[y == 0].mean()),
                "auto_share": float(1 - routed.mean())}

    def run(self, target: str) -> list[dict[str, object]]:
        sens, spec = TARGETS[target]
        y, p, _ = self.ref
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TriageWarning)
            in_band = tune_with_known_answers(p, y, self.known, sensitivity=sens, specificity=spec,
                                              confidence=CONFIDENCE, curve_points=10)
        rows = []
        for method, tuned in [("perfect", self.tune(sens, spec, HumanErrorRates.perfect())),
                              ("prior", self.tune(sens, spec, HumanErrorRates.prior())),
                              ("known (all)", self.tune(sens, spec, self.known.rates(None, None))),
                              ("known (band)", in_band)]:
            report = tuned.report_
            rows.append({"target": target, "method": method,
                         "feasible": report.sensitivity_lower >= sens and report.specificity_lower >= spec,
                         "sens_bound": report.sensitivity_lower, "spec_bound": report.specificity_lower,
                         **self.apply(tuned)})
        return rows


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Coverage, feasibility and automatic share per target and method."""
    rows = rows.assign(sens_ok=rows["sensitivity"] >= rows["sens_bound"],
                       spec_ok=rows["specificity"] >= rows["spec_bound"])
    rows["both_ok"] = rows["sens_ok"] & rows["spec_ok"]
    grouped = rows.groupby(["target", "method"], sort=False)
    return pd.DataFrame({
        "trials": grouped.size(), "feasible": grouped["feasible"].mean(),
        "sens bound (median)": grouped["sens_bound"].median(),
        "sens realised (median)": grouped["sensitivity"].median(), "sens coverage": grouped["sens_ok"].mean(),
        "spec bound (median)": grouped["spec_bound"].median(),
        "spec realised (median)": grouped["specificity"].median(), "spec coverage": grouped["spec_ok"].mean(),
        "both covered": grouped["both_ok"].mean(), "automatic (median)": grouped["auto_share"].median()}).reset_index()


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (floats to 4 decimals)."""
    cells = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = [list(frame.columns), ["---"] * len(frame.columns), *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--k", type=int, default=3, help="reviews per routed stack (default 3)")
    parser.add_argument("--oof", help="a run's oof.csv: draw (label, probability) pairs from it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scores = Scores(args.oof)
    start = time.process_time()
    rows = []
    for trial in range(args.trials):
        lab = Trial(args.seed + trial, scores, args.k)
        for target in TARGETS:
            rows.extend(lab.run(target))
    table = summarise(pd.DataFrame(rows))
    print(f"{args.trials} trials, k = {args.k}, scores: {args.oof or 'binormal, AUC ~ 0.93'}, confidence {CONFIDENCE}; "
          f"CPU {time.process_time() - start:.0f} s on {platform.node()}")
    print(markdown(table))


if __name__ == "__main__":
    main()
