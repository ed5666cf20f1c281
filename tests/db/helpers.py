"""Small builders for database tests: vessels with predictions, users without slow password hashing."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.orm import Session

from db.models import Claim, User
from db.predictions import replace_predictions, upsert_model_run
from db.vessels import import_labels, import_metadata


@dataclass
class MetaRow:
    filename: str
    project_id: str
    num_frames: int
    crowd_score: float | None = None
    tier1: bool | None = None


@dataclass
class LabelRow:
    filename: str
    stalled: int


def add_scored_stacks(session: Session, probabilities: list[float], *, labels: dict[int, int] | None = None,
                      run_name: str = "run", threshold: float | None = 0.5) -> int:
    """Vessels ``s000.mp4``… with one prediction each (and optional crowd labels); returns the run id."""
    names = [f"s{i:03d}.mp4" for i in range(len(probabilities))]
    import_metadata(session, rows=[MetaRow(name, "p", 20) for name in names], source="meta.csv", split="test")
    if labels:
        import_labels(session, rows=[LabelRow(names[i], label) for i, label in labels.items()], source="labels.csv")
    run = upsert_model_run(session, name=run_name, arch="tiny", threshold=threshold)
    frame = pd.DataFrame({"filename": names, "probability": probabilities, "spread": 0.0, "role": "new", "fold": None})
    report = replace_predictions(session, model_run_id=run.id, predictions=frame)
    assert report.ok, report.issues
    return run.id


def add_plain_users(session: Session, names: list[str], role: str = "reviewer") -> list[int]:
    """Users with a placeholder hash (they cannot log in): queue tests need ids, not argon2's 0.3 s per hash."""
    users = [User(name=name, password_hash="!", role=role) for name in names]
    session.add_all(users)
    session.flush()
    return [user.id for user in users]


def give_back(session: Session, *, user_id: int, vessel_id: int) -> bool:
    """Drop a reviewer's claim on a stack, as if it had expired (the app lets claims expire)."""
    return session.execute(delete(Claim).where(Claim.vessel_id == vessel_id, Claim.user_id == user_id)).rowcount > 0
