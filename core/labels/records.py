"""Plain records passed between layers (the database hands them to training and prediction)."""

from __future__ import annotations

from dataclasses import dataclass


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
