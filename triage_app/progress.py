"""What the Dashboard computes, testable without Streamlit: how much review is left and when it will
be done at the current pace, how many human answers the model saves, and how agreement between
reviewers and with the model develops over time.

"Left" counts routed stacks still short of k reviews; the pace counts answers that count towards
k (all but "unsure") over the last days; the forecast is left × k ÷ pace (a lower bound while
some stacks already have a few of their k reviews). The saving compares the human answers needed
for the scored stacks without a crowd answer: by the crowd (votes per stack, an input), by
reviewing every stack k times, and under the active policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from db import queue
from triage_app.services import Backend


@dataclass(frozen=True)
class LabProgress:
    """What a lab asks the Dashboard: how much is left, when it will be done, what the model saved."""

    stats: queue.QueueStats
    reviews_required: int
    needs_humans_without_model: int
    """Scored stacks without a crowd answer: all of them would need humans without the model."""
    per_day: float
    """Counted reviews (all but "unsure") per day over the pace window."""
    pace_days: float
    """Length of the pace window actually used (days since the first review, at most the window)."""
    finish: pd.Timestamp | None
    """When the remaining reviews are done at the current pace (None without a pace)."""

    @property
    def reviews_left(self) -> int:
        """Reviews still to do: remaining stacks × k (a lower bound while some have fewer than k)."""
        return self.stats.remaining * self.reviews_required


def review_pace(reviews: pd.DataFrame, *, now: pd.Timestamp, window_days: float = 7.0) -> tuple[float, float]:
    """Counted reviews per day over the last ``window_days`` (or since the first review, if later),
    and the window's length in days. (0, 0) without reviews."""
    counted = reviews[reviews["answer"] != "unsure"]
    if counted.empty:
        return 0.0, 0.0
    times = pd.to_datetime(counted["created_at"], utc=True)
    start = max(times.min(), now - pd.Timedelta(days=window_days))
    days = max((now - start) / pd.Timedelta(days=1), 1 / 24)  # at least an hour: no pace from one minute
    return float((times >= start).sum() / days), float(days)


def lab_progress(backend: Backend, *, now: pd.Timestamp | None = None, window_days: float = 7.0) -> LabProgress:
    """Queue counts, the pace of the last ``window_days`` and the forecast finish."""
    from db.models import Prediction

    now = now or pd.Timestamp.now(tz="UTC")
    with backend.factory() as session:
        stats = queue.queue_stats(session)
        rule = queue.queue_rule(session)
        unlabelled = 0 if rule is None else session.scalar(select(func.count()).select_from(Prediction).where(
            Prediction.model_run_id == rule.model_run_id, Prediction.review_level.is_not(None)))
        reviews = queue.reviews_frame(session)
    k = 1 if rule is None else rule.band.reviews_required
    per_day, days = review_pace(reviews, now=now, window_days=window_days)
    left = stats.remaining * k
    finish = None if per_day <= 0 else now + pd.Timedelta(days=left / per_day)
    return LabProgress(stats=stats, reviews_required=k, needs_humans_without_model=int(unlabelled), per_day=per_day,
                       pace_days=days, finish=finish if left else now)


def workload_comparison(progress: LabProgress, *, crowd_votes: int) -> pd.DataFrame:
    """Human answers needed for the stacks without a crowd answer: by the crowd, reviewing all of
    them, and under the policy (done and left); with what the policy saves."""
    k, everything = progress.reviews_required, progress.needs_humans_without_model
    routed = progress.stats.routed_to_humans
    rows = [("crowd answers", everything * crowd_votes, f"{crowd_votes} volunteer answers per stack"),
            ("review every stack", everything * k, f"{everything:,} stacks × {k} review(s)"),
            ("with the model", routed * k, f"{routed:,} routed stacks × {k} review(s)")]
    frame = pd.DataFrame(rows, columns=["scenario", "human answers", "how"])
    frame["saved by the model"] = frame["human answers"] - routed * k
    return frame


def agreement_by_day(reviews: pd.DataFrame, scores: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    """Per day of review: the share of stalled/flowing answers agreeing with the other reviewers'
    majority on the same stack (ties and single-reviewer stacks left out) and with the model
    (probability >= ``threshold`` = stalled), and how many answers each share rests on.

    ``reviews``: filename, answer, created_at (``db.queue.reviews_frame``); ``scores``: filename,
    probability.
    """
    labels = {"stalled": 1, "flowing": 0}
    answers = reviews[reviews["answer"].isin(list(labels))].assign(label=lambda r: r["answer"].map(labels))
    columns = ["day", "with_reviewers", "reviewer_answers", "with_model", "model_answers"]
    if answers.empty:
        return pd.DataFrame(columns=columns)
    totals = answers.groupby("filename")["label"].agg(["sum", "count"])
    answers = answers.join(totals, on="filename")
    others, others_stalled = answers["count"] - 1, answers["sum"] - answers["label"]
    decided = (others > 0) & (2 * others_stalled != others)
    majority = (2 * others_stalled > others).astype(int)
    answers["with_reviewers"] = np.where(decided, majority == answers["label"], np.nan)
    model = scores.set_index("filename")["probability"].reindex(answers["filename"]).to_numpy(dtype=float)
    answers["with_model"] = np.where(np.isnan(model), np.nan, (model >= threshold) == answers["label"].to_numpy())
    answers["day"] = pd.to_datetime(answers["created_at"], utc=True).dt.floor("D")
    grouped = answers.groupby("day")
    frame = pd.DataFrame({"with_reviewers": grouped["with_reviewers"].mean(),
                          "reviewer_answers": grouped["with_reviewers"].count(),
                          "with_model": grouped["with_model"].mean(), "model_answers": grouped["with_model"].count()})
    return frame.reset_index()[columns]
