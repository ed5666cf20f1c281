"""``stalltriage train`` and ``predict`` end to end: synth → db upgrade → ingest → train → predict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.labels.competition import read_labels, read_metadata
from core.model.rundir import RunDir
from core.video.store import VolumeStore, key_for
from db.engine import make_engine, make_session_factory
from db.vessels import import_labels, import_metadata, ingest_result_row, record_ingest_results
from triage_app.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY_TRAIN = ["--folds", "2", "--epochs", "2", "--snapshots", "1", "--size", "16", "--max-depth", "16",
              "--width", "6", "--tier2", "cut", "--device", "cpu"]


@pytest.fixture
def ingested(synth_data, tmp_path):
    """Common options of a database + store holding the synthetic train and test stacks."""
    common = ["--db", f"sqlite:///{tmp_path / 'st.db'}", "--store", str(tmp_path / "store")]
    assert main(["db", "upgrade", *common]) == 0
    assert main(["ingest", str(synth_data / "train"), "--metadata", str(synth_data / "train_metadata.csv"),
                 "--labels", str(synth_data / "train_labels.csv"), "--workers", "1", "--no-progress", *common]) == 0
    assert main(["ingest", str(synth_data / "test"), "--metadata", str(synth_data / "test_metadata.csv"),
                 "--workers", "1", "--no-progress", *common]) == 0
    _register_in_db(synth_data, common[1], tmp_path / "store")
    return common


def _register_in_db(synth_data, db_url, store_path) -> None:
    """Vessels, crowd answers and ingest status in the database (idempotent if ingest did it)."""
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session, VolumeStore(store_path, readonly=True) as store:
        for split in ("train", "test"):
            rows = read_metadata(synth_data / f"{split}_metadata.csv").rows
            import_metadata(session, rows=rows, source=f"{split}_metadata.csv", split=split)
            record_ingest_results(session, [ingest_result_row(filename=row.filename, ok=key_for(row.filename) in store)
                                            for row in rows])
        import_labels(session, rows=read_labels(synth_data / "train_labels.csv").rows, source="train_labels.csv")
    engine.dispose()


@pytest.mark.slow
def test_train_then_predict(ingested, synth_data, tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    assert main(["train", "--out", str(run.root), *TINY_TRAIN, *ingested]) == 0
    assert "out-of-fold: AUC" in capsys.readouterr().out
    assert run.is_complete() and run.model_card.exists()
    assert "stalltriage train --out" in run.model_card.read_text()

    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(run.root), "--split", "all", "--out", str(out), *ingested]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["filename", "probability", "spread", "role", "fold"]
    train = set(pd.read_csv(synth_data / "train_metadata.csv")["filename"])
    test = set(pd.read_csv(synth_data / "test_metadata.csv")["filename"])
    assert set(frame["filename"]) == train | test
    trained_on = set(pd.read_csv(run.oof)["filename"])
    assert set(frame.loc[frame["role"] == "out_of_fold", "filename"]) == trained_on <= train
    assert set(frame.loc[frame["role"] == "held_out", "filename"]) == train - trained_on
    assert (frame.loc[frame["filename"].isin(test), "role"] == "new").all()
    assert frame["fold"].between(0, 1).all()
    assert frame["probability"].between(0, 1).all() and (frame["spread"] >= 0).all()

    assert main(["predict", "--model", str(run.root), *ingested]) == 0  # default: test split, CSV in the run
    assert set(pd.read_csv(run.root / "predictions_test.csv")["filename"]) == test

    sharded = tmp_path / "sharded.csv"  # torchrun: 2 gloo ranks score half each, rank 0 writes one result
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "triage_app.cli", "predict", "--model", str(run.root), "--split", "all", "--out", str(sharded),
           *ingested]
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("scored ") == 1  # one summary: only rank 0 writes
    pd.testing.assert_frame_equal(pd.read_csv(sharded), frame, atol=1e-5)


def test_train_without_labels_says_what_to_ingest(synth_data, tmp_path, capsys):
    common = ["--db", f"sqlite:///{tmp_path / 'st.db'}", "--store", str(tmp_path / "store")]
    assert main(["db", "upgrade", *common]) == 0
    assert main(["ingest", str(synth_data / "test"), "--metadata", str(synth_data / "test_metadata.csv"),
                 "--workers", "1", "--no-progress", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "r"), *TINY_TRAIN, *common]) == 1
    out = capsys.readouterr().out
    assert "none of 0 records is a labelled training stack" in out
    assert "--labels train_labels.csv" in out and "crowd_score" in out


def test_unknown_arch_and_missing_run_are_clear_errors(ingested, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "r"), "--arch", "vgg3d", *ingested]) == 2
    assert "unknown --arch 'vgg3d'" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "nothing"), *ingested]) == 1
    assert "not a finished training run" in capsys.readouterr().out
