"""The per-project validation gate: a project's stacks are decided automatically only once it has
human answers of its own and they do not show the policy breaking the promise there.

Why: the thresholds are tuned on a reference that pools every project (animal, microscope, imaging
session). A project the model does not know, or one with few stacks in the pool, can break the
promise while the pooled bounds still pass. Stall Catchers' rule for machine labels is to use them
only where the model has been validated; this is that rule, side by side and project by project.

**The rule.** For each side the policy decides automatically, on the project's own answers (the
human standard: crowd or expert labels, and reviewers' answers to stacks drawn at random from the
project), the side opens for the project when

1. the project has at least ``min_answers`` (:data:`MIN_ANSWERS`, 20) human answers of the side's
   class ("stalled" for ``t_low``, "flowing" for ``t_high``), and
2. the exact one-sided binomial test at the side's confidence (:func:`core.policy.relative.side_confidence`,
   as the tuner uses) does not show the side changing more of the project's answers than the
   pooled target allows: the one-sided Clopper–Pearson *lower* bound of ``changed / answers`` is
   at most ``1 - sensitivity`` (``t_low``) or ``1 - specificity`` (``t_high``).

A side the policy switches off decides nothing and needs no validation. A project is
**validated** when every side the policy decides is open for it; otherwise it is **gated** and
only its open sides (if any) decide its stacks.

**What it does and does not prove.** The promise stays the pooled one, with its confidence: the
tuner's bounds over every project's reference. The gate adds that no project decides before it
has answers of its own, and that a project whose own answers show the model failing it (a project
the model does not know) is held back; 20 answers give the test a fair chance to catch a project
whose change rate is ten times the allowed one (about 60 % on the "stalled" side at 0.99, near
certainty on the "flowing" side at 0.95). It does not prove the target on each project separately:
with none changed that takes :func:`core.metrics.zero_failure_size` answers of the class (368
"stalled" answers for 0.99 at 97.5 %), more stalls than most projects will ever have, and asking it
would leave the flowing side closed everywhere (on the realistic profile: 0.5 % of new stacks
decided instead of 15.8 %, docs/benchmarks.md).

**Answers still needed.** The fewest further answers of the side's class, none of them changed,
after which both conditions hold (a lower bound: each new change can raise it). In stacks it is
that many answers divided by the class's share of the project's answers (the pooled reference's
share while the project has none).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.metrics import clopper_pearson
from core.policy.band import BandRule
from core.policy.relative import side_confidence

if TYPE_CHECKING:  # pandas only in gate_table: db.models imports this module for STATUSES
    import pandas as pd

MIN_ANSWERS = 20
"""Human answers of a side's class a project needs before that side may decide its stacks."""

STATUSES = ("validated", "gated", "drifted")
"""A project's state under a policy: validated (every deciding side open), gated (a deciding side
not yet shown to keep the promise on the project), drifted (its stacks no longer look like its
reference: see :mod:`core.policy.drift`; both sides closed until it is validated again)."""
NO_PROJECT = ""
"""The project key of stacks without a project id (they form one project of their own)."""


@dataclass(frozen=True)
class SideGate:
    """One side of the policy on one project's answers.

    ``answers``: the project's human answers of the side's class ("stalled" for ``low``, "flowing"
    for ``high``); ``changed``: how many of them the side decides the other way; ``lower`` /
    ``upper``: the one-sided Clopper–Pearson bounds of ``changed / answers`` at the side's
    confidence (0 and 1 with no answers); ``max_rate``: ``1 -`` the pooled target; ``needed``:
    answers of the class still needed (0 when open).
    """

    side: str
    answers: int
    changed: int
    lower: float
    upper: float
    max_rate: float
    min_answers: int
    needed: int

    @property
    def open(self) -> bool:
        """The side may decide the project's stacks."""
        return bool(self.answers >= self.min_answers and self.lower <= self.max_rate)


def _consistent(changed: int, answers: int, *, max_rate: float, confidence: float, min_answers: int) -> bool:
    """Enough answers, and the binomial test does not show more than ``max_rate`` changed."""
    if answers < max(min_answers, 1):
        return False
    return bool(clopper_pearson(changed, answers, confidence=confidence, side="lower")[0] <= max_rate)


def answers_needed(changed: int, answers: int, *, max_rate: float, confidence: float,
                   min_answers: int = MIN_ANSWERS) -> int:
    """Fewest further answers, none of them changed, after which the side opens (0 when it is).

    Examples
    --------
    >>> answers_needed(0, 5, max_rate=0.01, confidence=0.975)
    15
    >>> answers_needed(3, 20, max_rate=0.01, confidence=0.975)  # 3 of 20 shows more than 1 %; of 63 it does not
    43
    """
    def opens(total: int) -> bool:
        return _consistent(changed, total, max_rate=max_rate, confidence=confidence, min_answers=min_answers)

    low = high = max(answers, min_answers, 1)
    while not opens(high):
        low, high = high, 2 * high
    while low < high:  # the smallest total that opens; the lower bound falls as the total grows
        middle = (low + high) // 2
        if opens(middle):
            high = middle
        else:
            low = middle + 1
    return max(high - answers, 0)


def side_gate(scores: np.ndarray, answers: np.ndarray, *, side: str, threshold: float, max_rate: float,
              confidence: float, min_answers: int = MIN_ANSWERS) -> SideGate:
    """The gate of one side (``"low"``: ``t_low`` against human "stalled" answers; ``"high"``:
    ``t_high`` against "flowing" ones) on one project's scores and 0/1 answers, at ``confidence``
    (the side's own level, e.g. :func:`core.policy.relative.side_confidence` of the policy's)."""
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high', not {side!r}")
    scores, answers = np.asarray(scores, dtype=float), np.asarray(answers)
    cls = scores[answers == (1 if side == "low" else 0)]
    rule = BandRule.of(threshold, None) if side == "low" else BandRule.of(None, threshold)
    changed = int(rule.automatic(cls).sum())
    n = len(cls)
    lower, upper = ((float(clopper_pearson(changed, n, confidence=confidence, side="lower")[0]),
                     float(clopper_pearson(changed, n, confidence=confidence, side="upper")[1])) if n else (0.0, 1.0))
    needed = answers_needed(changed, n, max_rate=max_rate, confidence=confidence, min_answers=min_answers)
    return SideGate(side=side, answers=n, changed=changed, lower=lower, upper=upper, max_rate=max_rate,
                    min_answers=min_answers, needed=needed)


@dataclass(frozen=True)
class ProjectGate:
    """The gate of one project: its answers, each deciding side's check, and what it still needs.

    ``low`` / ``high`` are None where the policy's side decides nothing. ``stacks_needed`` is the
    answered stacks the closed sides still need, estimated from the class shares (module
    docstring); 0 when validated.
    """

    project: str
    answered: int
    stalled: int
    flowing: int
    low: SideGate | None
    high: SideGate | None
    stacks_needed: int

    @property
    def low_open(self) -> bool:
        """``t_low`` decides this project's stacks (False also where the policy's ``t_low`` is off)."""
        return self.low is not None and self.low.open

    @property
    def high_open(self) -> bool:
        """``t_high`` decides this project's stacks (False also where the policy's ``t_high`` is off)."""
        return self.high is not None and self.high.open

    @property
    def status(self) -> str:
        """``validated`` when every deciding side is open, else ``gated``."""
        sides = [gate for gate in (self.low, self.high) if gate is not None]
        return "validated" if all(gate.open for gate in sides) else "gated"

    def reason(self) -> str:
        """One line: what each deciding side rests on, and what a closed one still needs."""
        parts = []
        for gate, name, answer in ((self.low, "t_low", "stalled"), (self.high, "t_high", "flowing")):
            if gate is None:
                continue
            counts = f'{gate.changed} of {gate.answers:,} human "{answer}" answers changed'
            if gate.open:
                parts.append(f"{name} open ({counts}, no more than {gate.max_rate:g} shown: lower bound "
                             f"{gate.lower:.4f})")
            else:
                why = ("no answers yet" if not gate.answers else f"fewer than {gate.min_answers}"
                       if gate.answers < gate.min_answers else
                       f"more than {gate.max_rate:g} changed: lower bound {gate.lower:.4f}")
                parts.append(f'{name} closed ({counts}, {why}): needs {gate.needed:,} more "{answer}" answers')
        if not parts:
            return "the policy decides nothing automatically"
        prefix = "validated" if self.status == "validated" else (
            f"not yet validated (about {self.stacks_needed:,} more answered stacks)")
        return f"{prefix}: " + "; ".join(parts)

    def as_dict(self) -> dict[str, object]:
        """Plain values for tables and storage (sides flattened, status and reason included)."""
        row: dict[str, object] = {"project": self.project, "status": self.status, "answered": self.answered,
                                  "stalled": self.stalled, "flowing": self.flowing, "low_open": self.low_open,
                                  "high_open": self.high_open, "stacks_needed": self.stacks_needed}
        for name, gate in (("low", self.low), ("high", self.high)):
            values = asdict(gate) if gate is not None else {"answers": 0, "changed": 0, "upper": math.nan,
                                                             "needed": 0}
            row.update({f"{name}_{key}": values[key] for key in ("changed", "upper", "needed")})
        row["reason"] = self.reason()
        return row


def gate_projects(answers: pd.DataFrame, *, t_low: float | None, t_high: float | None, sensitivity: float,
                  specificity: float, confidence: float, projects: list[str] | None = None,
                  pooled_share: float | None = None) -> list[ProjectGate]:
    """The gate of every project under a policy (module docstring for the rule).

    Parameters
    ----------
    answers
        One row per human-answered stack with a score from the predictor that decides new stacks
        (out of fold, held out, or never trained on): ``project`` (str; :data:`NO_PROJECT` for
        none), ``probability`` and ``answer`` (1 stalled, 0 flowing).
    t_low, t_high
        The policy's thresholds (None: that side decides nothing).
    sensitivity, specificity, confidence
        The pooled targets and the confidence of both sides together.
    projects
        Projects to report even without answers (e.g. every project with scored stacks); they are
        gated with everything still needed.
    pooled_share
        Stall share used to turn answers into stacks for a project with no answers of a class
        (default: the share among all of ``answers``, else 0.5).

    Returns
    -------
    list of ProjectGate
        Sorted by project.
    """
    level = side_confidence(confidence)
    share = pooled_share if pooled_share is not None else (float(answers["answer"].mean()) if len(answers) else 0.5)
    names = sorted(set(answers["project"]) | set(projects or []))
    groups = dict(tuple(answers.groupby("project", sort=False)))
    gates = []
    for project in names:
        group = groups.get(project, answers.iloc[0:0])
        scores, labels = group["probability"].to_numpy(float), group["answer"].to_numpy(int)
        sides = {}
        for side, threshold, target in (("low", t_low, sensitivity), ("high", t_high, specificity)):
            sides[side] = None if threshold is None else side_gate(scores, labels, side=side, threshold=threshold,
                                                                   max_rate=1 - target, confidence=level)
        stalled = int(labels.sum())
        project_share = stalled / len(labels) if len(labels) and 0 < stalled < len(labels) else share
        stacks = [gate.needed / (project_share if side == "low" else 1 - project_share)
                  for side, gate in sides.items() if gate is not None and not gate.open]
        gates.append(ProjectGate(project=project, answered=len(labels), stalled=stalled,
                                 flowing=len(labels) - stalled, low=sides["low"], high=sides["high"],
                                 stacks_needed=math.ceil(max(stacks, default=0))))
    return gates


def gate_table(gates: list[ProjectGate]) -> pd.DataFrame:
    """The gates as one row per project (:meth:`ProjectGate.as_dict`)."""
    import pandas as pd

    return pd.DataFrame([gate.as_dict() for gate in gates])
