"""The Dashboard's numbers: pace and finish, the model's saving, agreement by day."""

from __future__ import annotations

import pandas as pd
import pytest

from db import queue
from testkit.app_data import REVIEWER
from triage_app import progress, services

NOW = pd.Timestamp("2026-11-30 12:00", tz="UTC")


def _reviews(rows) -> pd.DataFrame:
    return pd.DataFrame([{"filename": f, "user": u, "answer": a, "created_at": NOW - pd.Timedelta(hours=h)}
                         for f, u, a, h in rows])


def test_pace_counts_answers_per_day_over_the_window():
    reviews = _reviews([("a", "x", "stalled", 24 * 10), ("b", "x", "flowing", 24 * 3), ("c", "y", "flowing", 24),
                        ("d", "y", "unsure", 2)])
    assert progress.review_pace(reviews, now=NOW, window_days=7) == (pytest.approx(2 / 7), 7.0)
    assert progress.review_pace(reviews.iloc[2:], now=NOW, window_days=7) == (pytest.approx(1.0), 1.0)
    assert progress.review_pace(reviews.iloc[3:], now=NOW) == (0.0, 0.0)  # "unsure" does not count


def test_agreement_by_day_with_reviewers_and_model():
    reviews = _reviews([("a", "x", "stalled", 30), ("a", "y", "stalled", 29), ("a", "z", "flowing", 2),
                        ("b", "x", "flowing", 1), ("c", "x", "unsure", 1)])
    scores = pd.DataFrame({"filename": ["a", "b"], "probability": [0.9, 0.8]})
    by_day = progress.agreement_by_day(reviews, scores, threshold=0.5).set_index("day")
    first, second = by_day.loc[NOW.floor("D") - pd.Timedelta(days=1)], by_day.loc[NOW.floor("D")]
    # day 1: x and y said stalled on a; each has the others' majority tied (stalled, flowing): left out
    assert first["reviewer_answers"] == 0 and first["with_model"] == 1.0 and first["model_answers"] == 2
    # day 2: z said flowing on a against a stalled majority and the model; x on b alone, against the model
    assert second["with_reviewers"] == 0.0 and second["reviewer_answers"] == 1
    assert second["with_model"] == 0.0 and second["model_answers"] == 2
    assert progress.agreement_by_day(reviews.iloc[4:], scores, threshold=0.5).empty


def test_progress_forecast_and_saving(app_data):
    backend = services.open_backend(app_data.settings)
    try:
        with backend.factory.begin() as session:
            user = services.login_attempt(session, name=REVIEWER[0], password=REVIEWER[1]).user
        for answer in ("stalled", "flowing"):
            item = services.review_items(backend, user)[0]
            services.record_answers(backend, user, [services.Answer(item.vessel_id, answer, 2.0)],
                                    offered=[item.vessel_id])
        lab = progress.lab_progress(backend, now=pd.Timestamp.now(tz="UTC"))
    finally:
        backend.close()
    assert isinstance(lab.stats, queue.QueueStats)
    assert (lab.stats.routed_to_humans, lab.stats.done, lab.reviews_left) == (20, 2, 18)
    assert lab.needs_humans_without_model == 20 and lab.pace_days == pytest.approx(1 / 24)
    assert lab.per_day == pytest.approx(48.0) and lab.finish > pd.Timestamp.now(tz="UTC")
    saving = progress.workload_comparison(lab, crowd_votes=20).set_index("scenario")
    assert saving.loc["crowd answers", "human answers"] == 400
    assert saving.loc["review every stack", "saved by the model"] == 0  # no policy: every stack goes to humans
