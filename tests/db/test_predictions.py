"""Model runs and predictions: one row per stack, replaced atomically, bad rows reported."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
from sqlalchemy import func, select

from db.models import Prediction
from db.predictions import get_model_run, predictions_frame, replace_predictions, upsert_model_run
from db.vessels import import_metadata


@dataclass
class Meta:
    filename: str
    project_id: str
    num_frames: int


def _frame(probabilities: dict[str, float], role: str = "new", fold: int | None = None) -> pd.DataFrame:
    return pd.DataFrame({"filename": list(probabilities), "probability": list(probabilities.values()),
                         "spread": [0.01] * len(probabilities), "role": [role] * len(probabilities),
                         "fold": pd.array([fold] * len(probabilities), dtype="Int64")})


@pytest.fixture
def run_id(session_factory) -> int:
    with session_factory.begin() as session:
        import_metadata(session, rows=[Meta(f"{i}.mp4", "p", 20) for i in range(5)], source="test_metadata.csv",
                        split="test")
        return upsert_model_run(session, name="/runs/r1", arch="tiny", threshold=0.6, metrics={"mcc": 0.8}).id


def test_rerunning_replaces_the_runs_rows_for_the_stacks_scored(session_factory, run_id: int) -> None:
    with session_factory.begin() as session:
        report = replace_predictions(session, model_run_id=run_id, predictions=_frame({f"{i}.mp4": 0.1 * i for i in range(5)}))
        assert (report.added, report.issues) == (5, [])
    with session_factory.begin() as session:
        run = upsert_model_run(session, name="/runs/r1", metrics={"mcc": 0.9})
        assert (run.id, run.arch, run.threshold, run.metrics) == (run_id, "tiny", 0.6, {"mcc": 0.9})
        replace_predictions(session, model_run_id=run_id, predictions=_frame({"0.mp4": 0.9, "1.mp4": 0.8},
                                                                                 "out_of_fold", 3))
    with session_factory() as session:
        frame = predictions_frame(session, model_run_id=run_id)
        assert frame["filename"].tolist() == ["0.mp4", "1.mp4", "2.mp4", "3.mp4", "4.mp4"]
        assert frame["probability"].tolist() == pytest.approx([0.9, 0.8, 0.2, 0.3, 0.4])
        assert frame["role"].tolist() == ["out_of_fold", "out_of_fold", "new", "new", "new"]
        assert frame["fold"].tolist() == [3, 3, pd.NA, pd.NA, pd.NA]
        assert get_model_run(session).name == "/runs/r1"


def test_replacement_is_atomic_when_the_transaction_fails(session_factory, run_id: int) -> None:
    with session_factory.begin() as session:
        replace_predictions(session, model_run_id=run_id, predictions=_frame({"0.mp4": 0.5, "1.mp4": 0.6}))
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        replace_predictions(session, model_run_id=run_id, predictions=_frame({"1.mp4": 0.7, "2.mp4": 0.2}))
        raise RuntimeError("killed half-way")
    with session_factory() as session:
        frame = predictions_frame(session, model_run_id=run_id)
        assert dict(zip(frame["filename"], frame["probability"])) == {"0.mp4": 0.5, "1.mp4": 0.6}


def test_bad_prediction_rows_are_reported_and_the_rest_written(session_factory, run_id: int) -> None:
    frame = _frame({"0.mp4": 0.5, "ghost.mp4": 0.5, "1.mp4": float("nan"), "2.mp4": 1.5, "3.mp4": 0.3})
    frame = pd.concat([frame, _frame({"0.mp4": 0.9})], ignore_index=True)
    with session_factory.begin() as session:
        report = replace_predictions(session, model_run_id=run_id, predictions=frame, source="run r1")
    assert report.added == 2
    assert [str(issue) for issue in report.issues] == [
        "run r1: ghost.mp4: prediction skipped: not in the database (ingest it first)",
        "run r1: 1.mp4: prediction skipped: probability None is not in [0, 1]",
        "run r1: 2.mp4: prediction skipped: probability 1.5 is not in [0, 1]",
        "run r1: 0.mp4: prediction skipped: appears twice; first kept"]
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 2


def test_role_and_fold_round_trip_and_bad_ones_are_reported(session_factory, run_id: int) -> None:
    frame = pd.DataFrame({"filename": ["0.mp4", "1.mp4", "2.mp4", "3.mp4", "4.mp4"],
                          "probability": [0.1, 0.2, 0.3, 0.4, 0.5], "spread": [0.0, 0.0, None, 0.0, 0.0],
                          "role": ["out_of_fold", "held_out", "new", "in_sample", "out_of_fold"],
                          "fold": [1, None, None, None, 1.5]})
    with session_factory.begin() as session:
        report = replace_predictions(session, model_run_id=run_id, predictions=frame, source="run r1")
    assert report.added == 3
    assert [str(issue) for issue in report.issues] == [
        "run r1: 3.mp4: prediction skipped: role 'in_sample' is not one of out_of_fold, held_out, new",
        "run r1: 4.mp4: prediction skipped: fold 1.5 is not a non-negative whole number"]
    with session_factory() as session:
        stored = predictions_frame(session, model_run_id=run_id)
    stored = stored[["filename", "role", "fold", "spread"]].astype(object)
    assert stored.where(stored.notna(), None).values.tolist() == [
        ["0.mp4", "out_of_fold", 1, 0.0], ["1.mp4", "held_out", None, 0.0], ["2.mp4", "new", None, None]]
