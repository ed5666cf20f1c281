"""Recording ingest and predict runs: first use creates the schema, reruns change nothing, conflicts are reported."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import select

from core.competition import read_labels, read_metadata
from core.ingest import FAILED, INGESTED, SKIPPED, IngestResult
from db.engine import make_engine, make_session_factory
from db.migrate import current_revision, downgrade, head_revision
from db.models import Vessel
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


def _vessels(url: str) -> list[tuple]:
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        rows = [tuple(r) for r in session.execute(
            select(Vessel.filename, Vessel.split, Vessel.status, Vessel.error, Vessel.roi_x, Vessel.roi_width,
                   Vessel.depth).order_by(Vessel.filename))]
    engine.dispose()
    return rows


def test_ingest_recording_creates_the_schema_and_reruns_change_nothing(empty_db_url: str, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    results = [IngestResult("a.mp4", "a", INGESTED, roi=(10, 20, 50, 60), num_frames=40, frame_size=(256, 256)),
               IngestResult("b.mp4", "b", FAILED, "b.mp4: no orange outline in any frame")]
    with IngestRecorder(empty_db_url) as recorder:
        assert recorder.import_csvs(metadata, labels) == []
        for result in results:
            recorder.record(result)
    assert current_revision(empty_db_url) == head_revision()
    first = _vessels(empty_db_url)
    assert first == [("a.mp4", "train", "ok", None, 10, 40, 40),
                     ("b.mp4", "train", "failed", "b.mp4: no orange outline in any frame", None, None, None)]
    with IngestRecorder(empty_db_url) as recorder:
        assert recorder.import_csvs(metadata, labels) == []
        recorder.record(IngestResult("a.mp4", "a", SKIPPED, roi=(10, 20, 50, 60), num_frames=40,
                                     frame_size=(256, 256)))
    assert _vessels(empty_db_url) == first


def test_conflicting_reimport_is_reported_and_an_old_schema_is_refused(sqlite_db_url: str, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    with IngestRecorder(sqlite_db_url) as recorder:
        recorder.import_csvs(metadata, labels)
    changed, _ = _csvs(tmp_path, TRAIN_META.replace("a.mp4,http://x/a.mp4,p1,40,0.9", "a.mp4,http://x/a.mp4,p2,40,0.9"))
    with IngestRecorder(sqlite_db_url) as recorder:
        problems = recorder.import_csvs(changed, None)
    assert len(problems) == 1 and "a.mp4: conflicts with the database, not applied: project_id 'p2'" in problems[0]
    downgrade(sqlite_db_url, "0003")  # an older schema this program knows: it must be upgraded first
    with pytest.raises(RuntimeError, match="run `stalltriage db upgrade` first"):
        IngestRecorder(sqlite_db_url)


def test_predict_recording_describes_the_run_and_replaces_its_rows(sqlite_db_url: str, tmp_path) -> None:
    metadata, labels = _csvs(tmp_path)
    with IngestRecorder(sqlite_db_url) as recorder:
        recorder.import_csvs(metadata, labels)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"arch": "slim3d", "folds": 2}))
    (run_dir / "threshold.json").write_text(json.dumps({"threshold": 0.38, "oof": {"mcc": 0.5, "auc": 0.8}}))
    frame = pd.DataFrame({"filename": ["a.mp4", "b.mp4", "ghost.mp4"], "probability": [0.9, 0.2, 0.5],
                          "spread": [0.1, 0.05, 0.0], "out_of_fold": [True, True, False]})
    report = record_predictions(sqlite_db_url, run_dir=run_dir, predictions=frame)
    assert report.added == 2 and [i.filename for i in report.issues] == ["ghost.mp4"]
    record_predictions(sqlite_db_url, run_dir=run_dir, predictions=frame.assign(probability=[0.7, 0.3, 0.5]))
    engine = make_engine(sqlite_db_url)
    with make_session_factory(engine)() as session:
        run = get_model_run(session)
        assert (run.name, run.arch, run.threshold, run.metrics["mcc"]) == (str(run_dir.resolve()), "slim3d", 0.38, 0.5)
        stored = predictions_frame(session, model_run_id=run.id)
    engine.dispose()
    assert stored["probability"].tolist() == [0.7, 0.3] and stored["label"].tolist() == [1, 0]
