"""Recording ingest and predict runs on the command's sessions: reruns change nothing, conflicts are reported."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from core.labels.competition import read_labels, read_metadata
from db.models import Stack
from db.predictions import get_model_run, predictions_frame
from db.recording import IngestRecorder, record_predictions

TRAIN_META = """filename,url,project_id,num_frames,crowd_score,tier1,micro,nano
a.mp4,http://x/a.mp4,p1,40,0.9,True,False,False
b.mp4,http://x/b.mp4,p1,50,0.1,True,False,False
"""
LABELS = "filename,stalled\na.mp4,1\nb.mp4,0\n"


def _csvs(tmp_path, meta: str = TRAIN_META):
    (tmp_path / "train_metadata.csv").write_text(meta)
    (tmp_path / "train_labels.csv").write_text(LABELS)
    return read_metadata(tmp_path / "train_metadata.csv"), read_labels(tmp_path / "train_labels.csv")


def _vessels(factory) -> list[tuple]:
    with factory() as session:
        return [tuple(r) for r in session.execute(
            select(Stack.filename, Stack.split, Stack.status, Stack.error, Stack.roi_x, Stack.roi_width,
                   Stack.depth).order_by(Stack.filename))]


def test_ingest_recording_reruns_change_nothing(session_factory, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    with IngestRecorder(session_factory) as recorder:
        assert recorder.import_csvs(metadata, labels) == []
        recorder.record(filename="a.mp4", ok=True, box=(10, 20, 50, 60), depth=40, frame_size=(256, 256))
        recorder.record(filename="b.mp4", ok=False, error="b.mp4: no orange outline in any frame")
    first = _vessels(session_factory)
    assert first == [("a.mp4", "train", "ok", None, 10, 40, 40),
                     ("b.mp4", "train", "failed", "b.mp4: no orange outline in any frame", None, None, None)]
    with IngestRecorder(session_factory) as recorder:
        assert recorder.import_csvs(metadata, labels) == []
        recorder.record(filename="a.mp4", ok=True, box=(10, 20, 50, 60), depth=40, frame_size=(256, 256))
    assert _vessels(session_factory) == first


def test_conflicting_reimport_is_reported(session_factory, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    with IngestRecorder(session_factory) as recorder:
        recorder.import_csvs(metadata, labels)
    changed, _ = _csvs(tmp_path, TRAIN_META.replace("a.mp4,http://x/a.mp4,p1,40,0.9", "a.mp4,http://x/a.mp4,p2,40,0.9"))
    with IngestRecorder(session_factory) as recorder:
        problems = recorder.import_csvs(changed, None)
    assert len(problems) == 1 and "a.mp4: conflicts with the database, not applied: project_id 'p2'" in problems[0]


def test_predict_recording_describes_the_run_and_replaces_its_rows(session_factory, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    with IngestRecorder(session_factory) as recorder:
        recorder.import_csvs(metadata, labels)
    config, threshold = {"arch": "slim3d", "folds": 2}, {"threshold": 0.38, "oof": {"mcc": 0.5, "auc": 0.8}}
    frame = pd.DataFrame({"filename": ["a.mp4", "b.mp4", "ghost.mp4"], "probability": [0.9, 0.2, 0.5],
                          "spread": [0.1, 0.05, 0.0], "role": ["out_of_fold", "held_out", "new"],
                          "fold": [1, None, None]})
    for probabilities in ([0.9, 0.2, 0.5], [0.7, 0.3, 0.5]):
        with session_factory.begin() as session:
            report = record_predictions(session, name="/runs/r1", config=config, threshold=threshold,
                                        predictions=frame.assign(probability=probabilities), source="runs/r1")
        assert report.added == 2 and [str(i) for i in report.issues] == [
            "runs/r1: ghost.mp4: prediction skipped: not in the database (ingest it first)"]
    with session_factory() as session:
        run = get_model_run(session)
        assert (run.name, run.arch, run.threshold, run.metrics["mcc"], run.params) == (
            "/runs/r1", "slim3d", 0.38, 0.5, config)
        stored = predictions_frame(session, model_run_id=run.id)
    assert stored["probability"].tolist() == [0.7, 0.3] and stored["label"].tolist() == [1, 0]
    assert stored["role"].tolist() == ["out_of_fold", "held_out"]
