"""Plain records passed between layers (the database hands them to training and prediction)."""

from __future__ import annotations

from dataclasses import dataclass

PREDICTION_ROLES = ("out_of_fold", "held_out", "new")
"""How a run scored a stack: out of fold (a training stack scored by the fold member that never saw
it), held out (a stack the run set aside from training) or new (a stack the run did not know)."""
REFERENCE_ROLES = ("out_of_fold", "held_out")
"""Scores from members that never trained on the stack: the only ones that can judge a policy
against the stack's answer, or doubt it."""


@dataclass(frozen=True)
class StackRecord:
    """One ingested stack with whatever reference answer is known for it.

    ``label`` is the competition's binary label (1 = stalled) where known; ``crowd_score`` is the
    fraction of the crowd that said "stalled"; ``tier1`` marks high-confidence labels. ``source``
    says where ``label`` came from: ``"crowd"`` (the CSVs) or ``"review"`` (reviewers' answers,
    see ``db.training_labels``).
    """

    filename: str
    key: str
    project_id: str
    split: str
    label: int | None = None
    crowd_score: float | None = None
    tier1: bool = False
    source: str = "crowd"
