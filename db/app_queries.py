"""Read-only queries behind the app's Dashboard and Thresholds pages (human labels, throughput, agreement).

Every function takes the session explicitly, returns plain values or pandas frames and never
commits. Only ``stalled`` / ``flowing`` answers count as labels; ``unsure`` and ``bad_stack`` are
counted as reviews but carry no label.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import Prediction, Review, Stack, utcnow
from db.queue import reviews_frame

LABEL_ANSWERS = {"stalled": 1, "flowing": 0}


def _frame(session: Session, query) -> pd.DataFrame:  # noqa: ANN001 - a SQLAlchemy Select
    result = session.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def human_labels(session: Session) -> pd.DataFrame:
    """Per reviewed stack: filename, n_reviews, n_stalled, n_flowing and ``human`` — the majority
    of the stalled/flowing answers (1 stalled, 0 flowing), missing on a tie or when none. Answers
    to known-answer stacks measure reviewers, not stacks: they are left out."""
    stalled = func.sum(case((Review.answer == "stalled", 1), else_=0))
    flowing = func.sum(case((Review.answer == "flowing", 1), else_=0))
    query = (select(Stack.filename, func.count().label("n_reviews"), stalled.label("n_stalled"),
                    flowing.label("n_flowing"))
             .join(Stack, Stack.id == Review.vessel_id).where(Review.known_answer.is_(False))
             .group_by(Stack.filename))
    frame = _frame(session, query)
    frame["human"] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    frame.loc[frame["n_stalled"] > frame["n_flowing"], "human"] = 1
    frame.loc[frame["n_flowing"] > frame["n_stalled"], "human"] = 0
    return frame


def reviews_per_hour(session: Session, *, since: datetime | None = None) -> pd.DataFrame:
    """Review counts per hour and reviewer since ``since`` (default: the last 48 hours)."""
    since = since or utcnow() - timedelta(hours=48)
    reviews = reviews_frame(session)
    reviews = reviews[pd.to_datetime(reviews["created_at"], utc=True) >= pd.Timestamp(since)]
    if reviews.empty:
        return pd.DataFrame(columns=["hour", "user", "reviews"])
    hour = pd.to_datetime(reviews["created_at"], utc=True).dt.floor("h")
    return reviews.assign(hour=hour).groupby(["hour", "user"]).size().rename("reviews").reset_index()


def reviewer_agreement(session: Session) -> pd.DataFrame:
    """Per reviewer: labelled answers on stacks others labelled too, and the share agreeing with
    the others' majority (ties excluded)."""
    reviews = reviews_frame(session)
    reviews = reviews[reviews["answer"].isin(list(LABEL_ANSWERS))].assign(
        label=lambda r: r["answer"].map(LABEL_ANSWERS))
    totals = reviews.groupby("filename")["label"].agg(["sum", "count"])
    reviews = reviews.join(totals, on="filename")
    others_stalled = reviews["sum"] - reviews["label"]
    others = reviews["count"] - 1
    reviews = reviews[(others > 0) & (2 * others_stalled != others)].assign(
        majority=lambda r: (2 * (r["sum"] - r["label"]) > r["count"] - 1).astype(int))
    if reviews.empty:
        return pd.DataFrame(columns=["user", "shared_stacks", "agreement"])
    reviews = reviews.assign(agrees=reviews["label"] == reviews["majority"])
    return (reviews.groupby("user")["agrees"].agg(shared_stacks="count", agreement="mean").reset_index()
            .sort_values("user"))


def model_human_disagreements(session: Session, *, model_run_id: int, threshold: float = 0.5) -> pd.DataFrame:
    """Stacks whose human majority contradicts the model (probability >= ``threshold`` = stalled):
    filename, probability, human, n_reviews — most confident model errors first."""
    humans = human_labels(session).dropna(subset=["human"])
    query = (select(Stack.filename, Prediction.probability).join(Stack, Stack.id == Prediction.vessel_id)
             .where(Prediction.model_run_id == model_run_id, Stack.filename.in_(humans["filename"].tolist())))
    merged = _frame(session, query).merge(humans, on="filename")
    if merged.empty:
        return pd.DataFrame(columns=["filename", "probability", "human", "n_reviews"])
    model = (merged["probability"] >= threshold).astype(int)
    wrong = merged[model != merged["human"]].copy()
    wrong["confidence"] = (wrong["probability"] - 0.5).abs()
    return (wrong.sort_values("confidence", ascending=False)[["filename", "probability", "human", "n_reviews"]]
            .reset_index(drop=True))


def reviewed_scores(session: Session, *, model_run_id: int) -> pd.DataFrame:
    """filename, probability of the run's reviewed stacks (to compare reviewers with the model)."""
    reviewed = select(Review.vessel_id).distinct().scalar_subquery()
    query = (select(Stack.filename, Prediction.probability).join(Stack, Stack.id == Prediction.vessel_id)
             .where(Prediction.model_run_id == model_run_id, Prediction.vessel_id.in_(reviewed)))
    return _frame(session, query)
