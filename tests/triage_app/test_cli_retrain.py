"""``stalltriage retrain`` end to end on a tiny run: reviewed test stacks train, keep honest folds, get scored out
of fold; the new run is activated only through the tuner; progress lands in the status file."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import select

from core.model.predict import crossfit_fold
from core.model.rundir import RunDir
from db.engine import make_engine, make_session_factory
from db.models import ModelRun, Prediction, Stack
from db.policy import active_policy, save_policy
from db.queue import submit_review
from tests.db.helpers import add_plain_users
from tests.triage_app.test_cli_train import TINY_TRAIN, ingested  # noqa: F401 - a fixture
from triage_app.cli import main


@pytest.mark.slow
def test_retrain_learns_from_reviews_and_activates_only_through_the_tuner(ingested, synth_data, tmp_path, capsys):
    old = RunDir(tmp_path / "run")
    assert main(["train", "--out", str(old.root), *TINY_TRAIN, *ingested]) == 0
    assert main(["predict", "--model", str(old.root), "--split", "all", "--out", str(tmp_path / "p.csv"),
                 *ingested]) == 0
    engine = make_engine(ingested[1])
    factory = make_session_factory(engine)
    test_names = sorted(pd.read_csv(synth_data / "test_metadata.csv")["filename"])
    reviewed = test_names[:4]
    with factory.begin() as session:
        run_id = session.scalar(select(ModelRun.id))
        save_policy(session, model_run_id=run_id, t_low=None, t_high=None, target_sensitivity=0.5,
                    target_specificity=0.5, confidence=0.9)
        (ann,) = add_plain_users(session, ["ann"])
        for i, name in enumerate(reviewed):
            vessel = session.scalar(select(Stack.id).where(Stack.filename == name))
            submit_review(session, user_id=ann, vessel_id=vessel, answer="stalled" if i % 2 else "flowing")
    capsys.readouterr()

    new = RunDir(tmp_path / "retrained")
    status = tmp_path / "status.json"
    code = main(["retrain", "--out", str(new.root), "--time-budget", "0.3", "--epochs", "2", "--device", "cpu",
                 "--status", str(status), *ingested])
    out = capsys.readouterr().out
    assert "4 labels from reviews" in out
    assert json.loads(new.config.read_text())["data"]["from_reviews"] == 4
    assert "4 labelled by reviewers" in new.model_card.read_text()

    old_folds = pd.read_csv(old.oof).set_index("filename")["fold"]
    new_folds = pd.read_csv(new.oof).set_index("filename")["fold"]
    assert set(reviewed) <= set(new_folds.index)  # reviewed test stacks are labelled stacks of the new run
    assert (new_folds.loc[old_folds.index] == old_folds).all()  # a stack keeps the fold that never saw it
    assert all(new_folds[name] == crossfit_fold(name, 2) for name in reviewed)  # the fold that scored it

    with factory() as session:
        new_run = session.scalar(select(ModelRun).where(ModelRun.name == str(new.root.resolve())))
        roles = dict(session.execute(select(Stack.filename, Prediction.role).join(Prediction)
                                     .where(Prediction.model_run_id == new_run.id)).all())
        policy = active_policy(session)
    engine.dispose()
    assert {roles[name] for name in reviewed} == {"out_of_fold"}  # scored by the fold that held it out
    assert {roles[name] for name in test_names[4:]} == {"new"}
    state = json.loads(status.read_text())
    if code == 0:
        assert state["state"] == "activated" and policy.model_run_id == new_run.id and policy.created_by == "retrain"
    else:
        assert state["state"] == "kept" and "kept the active policy" in out and policy.model_run_id == run_id


def test_retrain_without_an_active_policy_says_so(ingested, tmp_path, capsys):
    assert main(["retrain", "--time-budget", "0.1", "--data-dir", str(tmp_path), *ingested]) == 1
    assert "no active policy" in capsys.readouterr().out
    status = json.loads((tmp_path / "retrain" / "status.json").read_text())
    assert status["state"] == "failed" and "no active policy" in status["message"]
