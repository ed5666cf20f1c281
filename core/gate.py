"""The per-project validation gate: a project's stacks are decided automatically only where its own
human answers show that the promise holds there.

Why: the thresholds are tuned on a reference that pools every project (animal, microscope, imaging
session). A project the model does not know, or one with few stacks in the pool, can break the
promise while the pooled bounds still pass. Stall Catchers' rule for machine labels is to use them
only where the model has been validated; this is that rule, side by side and project by project.

**The rule.** For each side the policy decides automatically, on the project's own answers (the
human standard: crowd or expert labels, and reviewers' answers to stacks drawn at random from the
project), the one-sided Clopper–Pearson upper bound of the share of answers the side changes,
at the policy's own threshold and at :func:`core.relative.side_confidence` (half of ``1 -
confidence`` per side, as the tuner uses), must be no worse than the pooled target:

* ``t_low`` (decides flowing): of the project's ``n1`` human "stalled" answers, ``k1`` score
  ``p <= t_low``; the side is open when ``upper(k1, n1) <= 1 - sensitivity``;
* ``t_high`` (decides stalled): of its ``n0`` human "flowing" answers, ``k0`` score ``p >= t_high``;
  open when ``upper(k0, n0) <= 1 - specificity``.

A side the policy switches off decides nothing and needs no validation. A project is
**validated** when every side the policy decides is open for it; otherwise it is **gated** and
only its open sides (if any) decide its stacks. It is the same test as the tuner's
(:mod:`core.relative`), at a fixed threshold instead of along a walk, so a project that passes
keeps the promise at the stated confidence as if it had been its own reference.

**Answers still needed.** Even zero changes among ``n`` answers only prove a rate below
``1 - (1 - c) ** (1 / n)``: with none changed a side needs
:func:`core.metrics.zero_failure_size` answers of its class (368 "stalled" answers for 0.99 at
97.5 % per side, 72 "flowing" ones for 0.95), and with ``k`` changed the smallest ``n`` whose
bound of ``k / n`` passes. What a side still needs is that number minus what the project has,
assuming no further changes (a lower bound: each new change raises it). In stacks it is that
many answers of the side's class divided by the class's share of the project's answers (the
pooled reference's share while the project has none).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.metrics import clopper_pearson, max_errors_within, zero_failure_size
from core.relative import side_confidence

STATUSES = ("validated", "gated", "drifted")
"""A project's state under a policy: validated (every deciding side open), gated (a deciding side
not yet shown to keep the promise on the project), drifted (its stacks no longer look like its
reference: see :mod:`core.drift`; both sides closed until it is validated again)."""
NO_PROJECT = ""
"""The project key of stacks without a project id (they form one project of their own)."""


@dataclass(frozen=True)
class SideGate:
    """One side of the policy on one project's answers.

    ``answers``: the project's human answers of the side's class ("stalled" for ``low``, "flowing"
    for ``high``); ``changed``: how many of them the side decides the other way; ``upper``: the
    one-sided Clopper–Pearson bound of ``changed / answers`` at the side's confidence (1 with no
    answers); ``max_rate``: ``1 -`` the pooled target; ``needed``: answers of the class still
    needed (0 when open).
    """

    side: str
    answers: int
    changed: int
    upper: float
    max_rate: float
    needed: int

    @property
    def open(self) -> bool:
        """The side may decide the project's stacks."""
        return bool(self.upper <= self.max_rate)


def answers_needed(changed: int, answers: int, *, max_rate: float, confidence: float) -> int:
    """Fewest further answers, none of them changed, after which the bound of ``changed`` in all
    the answers is at most ``max_rate`` (0 when it is already).

    With ``changed == 0`` this is the zero-failure size minus ``answers``.

    Examples
    --------
    >>> answers_needed(0, 100, max_rate=0.01, confidence=0.975)
    268
    >>> answers_needed(0, 400, max_rate=0.01, confidence=0.975)
    0
    """
    if changed == 0:
        return max(zero_failure_size(1 - max_rate, confidence) - answers, 0)
    low, high = max(answers, 1), max(answers, 1)
    while max_errors_within(high, max_rate, confidence=confidence) < changed:
        low, high = high, 2 * high
    while low < high:  # the smallest total whose bound passes; the bound falls as the total grows
        middle = (low + high) // 2
        if max_errors_within(middle, max_rate, confidence=confidence) >= changed:
            high = middle
        else:
            low = middle + 1
    return max(high - answers, 0)


def side_gate(scores: np.ndarray, answers: np.ndarray, *, side: str, threshold: float, max_rate: float,
              confidence: float) -> SideGate:
    """The gate of one side (``"low"``: ``t_low`` against human "stalled" answers; ``"high"``:
    ``t_high`` against "flowing" ones) on one project's scores and 0/1 answers, at ``confidence``
    (the side's own level, e.g. :func:`core.relative.side_confidence` of the policy's)."""
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high', not {side!r}")
    scores, answers = np.asarray(scores, dtype=float), np.asarray(answers)
    cls = scores[answers == (1 if side == "low" else 0)]
    changed = int((cls <= threshold).sum() if side == "low" else (cls >= threshold).sum())
    n = len(cls)
    upper = float(clopper_pearson(changed, n, confidence=confidence, side="upper")[1]) if n else 1.0
    needed = answers_needed(changed, n, max_rate=max_rate, confidence=confidence)
    return SideGate(side=side, answers=n, changed=changed, upper=upper, max_rate=max_rate, needed=needed)


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
                parts.append(f"{name} open ({counts}, bound {gate.upper:.4f} <= {gate.max_rate:g})")
            else:
                bound = f"bound {gate.upper:.4f} > {gate.max_rate:g}" if gate.answers else "no answers yet"
                parts.append(f'{name} closed ({counts}, {bound}): needs {gate.needed:,} more "{answer}" answers')
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
    return pd.DataFrame([gate.as_dict() for gate in gates])
