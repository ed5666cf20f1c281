"""``stalltriage predict`` re-chooses the run's single threshold for its new stacks' estimated stall share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

import db.recording
from core.model.rundir import RunDir
from core.policy.label_shift import threshold_for_share
from db.engine import make_engine, make_session_factory
from db.models import ModelRun
from testkit.run_dir import make_run_dir
from triage_app.cli import main

OOF_THRESHOLD = 0.5


@pytest.fixture
def ingested(synth_data, tmp_path):
    """Common options of a database + store holding the synthetic train and test stacks."""
    common = ["--db", f"sqlite:///{tmp_path / 'st.db'}", "--store", str(tmp_path / "store")]
    assert main(["db", "upgrade", *common]) == 0
    for split, labels in (("train", ["--labels", str(synth_data / "train_labels.csv")]), ("test", [])):
        assert main(["ingest", str(synth_data / split), "--metadata", str(synth_data / f"{split}_metadata.csv"),
                     *labels, "--workers", "1", "--no-progress", *common]) == 0
    return common


def _run_with_oof(root, labels: pd.DataFrame) -> RunDir:
    """A finished run trained on ``labels``' stacks, with out-of-fold scores that separate the classes."""
    run = RunDir(make_run_dir(root, trained_on=list(labels["filename"])))
    rng = np.random.default_rng(0)
    stalled = labels["stalled"].to_numpy()
    oof = pd.read_csv(run.oof).assign(label=stalled,
                                      probability=np.where(stalled == 1, rng.uniform(0.4, 1.0, len(labels)),
                                                           rng.uniform(0.0, 0.6, len(labels))))
    oof.to_csv(run.oof, index=False)
    run.write_json(run.threshold, {"threshold": OOF_THRESHOLD, "oof": {"mcc": 0.3}})
    return run


def _stored_run(db_url: str) -> ModelRun:
    engine = make_engine(db_url)
    with make_session_factory(engine)() as session:
        run = session.scalars(select(ModelRun)).one()
        session.expunge(run)
    engine.dispose()
    return run


@pytest.mark.slow
def test_predict_sets_the_threshold_for_the_new_stacks_share(ingested, synth_data, tmp_path, capsys, monkeypatch):
    labels = pd.read_csv(synth_data / "train_labels.csv")
    trained, held_out = labels.iloc[:10], labels.iloc[10:]  # held-out train stacks keep their crowd answers
    run = _run_with_oof(tmp_path / "run", trained)
    assert main(["predict", "--model", str(run.root), "--split", "all", *ingested]) == 0
    assert "new stacks" not in capsys.readouterr().out  # 12 new stacks: too few for an estimate
    assert _stored_run(ingested[1]).threshold == OOF_THRESHOLD

    monkeypatch.setattr(db.recording, "MIN_NEW_STACKS", 10)
    assert main(["predict", "--model", str(run.root), "--split", "all", *ingested]) == 0
    out = capsys.readouterr().out

    stored = _stored_run(ingested[1])
    new = stored.metrics["new_stacks"]
    n_test = len(pd.read_csv(synth_data / "test_metadata.csv"))
    assert new["n"] == len(held_out) + n_test and new["n_crowd"] == len(held_out)
    assert new["crowd_share"] == pytest.approx(held_out["stalled"].mean())
    assert new["low"] <= new["share"] <= new["high"] and new["reference_share"] == pytest.approx(trained["stalled"].mean())
    oof = pd.read_csv(run.oof)
    assert stored.threshold == new["threshold"] == threshold_for_share(oof["probability"], oof["label"], new["share"])
    assert stored.metrics["oof_threshold"] == OOF_THRESHOLD and stored.metrics["mcc"] == 0.3  # out-of-fold metrics kept
    assert f"new stacks: estimated stall share {new['share']:.1%}" in out
    assert f"the crowd says {new['crowd_share']:.1%} of the {len(held_out)} with a crowd answer" in out
    assert f"single threshold for new stacks (submission export, dashboard): {stored.threshold:.4f}" in out


@pytest.mark.slow
def test_no_new_stacks_keeps_the_out_of_fold_threshold(synth_data, tmp_path, capsys):
    only_train = ["--db", f"sqlite:///{tmp_path / 'train.db'}", "--store", str(tmp_path / "store")]
    assert main(["db", "upgrade", *only_train]) == 0
    assert main(["ingest", str(synth_data / "train"), "--metadata", str(synth_data / "train_metadata.csv"),
                 "--labels", str(synth_data / "train_labels.csv"), "--workers", "1", "--no-progress",
                 *only_train]) == 0
    run = _run_with_oof(tmp_path / "run", pd.read_csv(synth_data / "train_labels.csv"))
    assert main(["predict", "--model", str(run.root), "--split", "all", *only_train]) == 0  # all trained on
    assert "new stacks" not in capsys.readouterr().out
    stored = _stored_run(only_train[1])
    assert stored.threshold == OOF_THRESHOLD and "new_stacks" not in stored.metrics
