"""Project standing under a saved policy (gate + drift), stored with it, on SQLite and PostgreSQL:
projects below, at and above the gate's requirement, one without answers, gate-served reviews
counting and band reviews not, a drifted project paused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.policy.gate import MIN_ANSWERS
from db.audit import recent_events
from db.engine import make_engine, make_session_factory
from db.models import PolicyRecord, Review, Stack
from db.predictions import replace_predictions, upsert_model_run
from db.project_status import project_status
from db.queue import queue_stats
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users
from triage_app import projects, tuning
from triage_app.cli import main

# 0.9 / 0.9 at 0.8 for both sides: each side at 0.9, so 22 unchanged answers of a class open its side
TARGETS = {"sensitivity": 0.9, "specificity": 0.9, "confidence": 0.8}
T_LOW, T_HIGH = 0.2, 0.8


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def add_project(session: Session, run_id: int, project: str, *, stalled: int, flowing: int, new: int,
                reference_scores: np.ndarray | None = None, new_scores: np.ndarray | None = None) -> list[str]:
    """Labelled stacks scored out of fold (default 0.5: no side changes them) and unlabelled ones
    (default spread over (0, 1)); returns the unlabelled filenames."""
    labelled = [f"{project}-l{i:03d}.mp4" for i in range(stalled + flowing)]
    unlabelled = [f"{project}-n{i:03d}.mp4" for i in range(new)]
    import_metadata(session, rows=[MetaRow(name, project, 20) for name in labelled + unlabelled], source="m.csv",
                    split="test")
    import_labels(session, rows=[LabelRow(name, int(i < stalled)) for i, name in enumerate(labelled)],
                  source="l.csv")
    reference = reference_scores if reference_scores is not None else np.full(len(labelled), 0.5)
    scores = new_scores if new_scores is not None else np.linspace(0.01, 0.99, new)
    frame = pd.DataFrame({"filename": labelled + unlabelled, "probability": np.concatenate([reference, scores]),
                          "spread": 0.0, "role": ["out_of_fold"] * len(labelled) + ["new"] * new, "fold": None})
    report = replace_predictions(session, model_run_id=run_id, predictions=frame)
    assert report.ok, report.issues
    return unlabelled


def test_projects_below_at_and_above_the_gate_and_one_without_answers(session_factory):
    with session_factory.begin() as session:
        run_id = upsert_model_run(session, name="run", arch="tiny").id
        for project, n in (("below", MIN_ANSWERS - 1), ("at", MIN_ANSWERS), ("above", 40)):
            add_project(session, run_id, project, stalled=n, flowing=n, new=30)
        add_project(session, run_id, "unseen", stalled=0, flowing=0, new=30)
        policy = tuning.save_thresholds(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH, reviews_required=1,
                                        actor="test", **TARGETS)
        policy_id = policy.id
    with session_factory() as session:
        rows = project_status(session).set_index("project_id")
        assert session.get(PolicyRecord, policy_id).project_gate
    assert rows["status"].to_dict() == {"above": "validated", "at": "validated", "below": "gated", "unseen": "gated"}
    assert rows.loc["below", ["low_open", "high_open", "answered", "stalled"]].tolist() == [False, False, 38, 19]
    assert rows.loc["below", "stacks_needed"] == 2  # one more of each class, at its 50 % stall share
    assert 'needs 1 more "stalled" answers' in rows.loc["below", "reason"]
    assert rows.loc["unseen", "stacks_needed"] == 2 * MIN_ANSWERS and "no answers yet" in rows.loc["unseen", "reason"]
    assert rows.loc["at", "reason"].startswith(f"validated: t_low open (0 of {MIN_ANSWERS} human")


def test_gate_served_reviews_count_and_band_reviews_do_not(session_factory):
    with session_factory.begin() as session:
        run_id = upsert_model_run(session, name="run", arch="tiny").id
        add_project(session, run_id, "big", stalled=40, flowing=40, new=0)
        fresh = add_project(session, run_id, "fresh", stalled=0, flowing=0, new=60,
                            new_scores=np.full(60, 0.5))
        user, = add_plain_users(session, ["gus"])
        ids = dict(session.execute(select(Stack.filename, Stack.id).where(Stack.filename.in_(fresh))).all())
        for i, name in enumerate(fresh[:50]):
            session.add(Review(vessel_id=ids[name], user_id=user, answer="stalled" if i < 25 else "flowing",
                               gate=i < 48))
        session.flush()
        standing = projects.project_standing(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH, **TARGETS)
    fresh_row = standing.set_index("project_id").loc["fresh"]
    assert fresh_row["answered"] == 48 and fresh_row["stalled"] == 25  # the two band reviews are left out
    assert fresh_row["status"] == "validated" and fresh_row["low_open"] and fresh_row["high_open"]
    assert fresh_row["gate_reviews"] == 48


def test_a_project_whose_scores_moved_is_drifted_and_decides_nothing(session_factory):
    with session_factory.begin() as session:
        run_id = upsert_model_run(session, name="run", arch="tiny").id
        rng = np.random.default_rng(0)
        for project, shift in (("steady", 0.0), ("moved", 0.45)):
            reference = np.concatenate([rng.uniform(0.3, 0.7, 40), rng.uniform(0.0, 0.15, 160)])
            add_project(session, run_id, project, stalled=40, flowing=160, new=200, reference_scores=reference,
                        new_scores=np.clip(rng.uniform(0.0, 0.15, 200) + shift, 0, 1))
        standing = projects.project_standing(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH, **TARGETS)
    rows = standing.set_index("project_id")
    assert rows["status"].to_dict() == {"moved": "drifted", "steady": "validated"}
    assert not rows.loc["moved", "low_open"] and not rows.loc["moved", "high_open"]
    assert rows.loc["moved", "reason"].startswith("drifted: probability: D=")
    assert rows.loc["moved", "stacks_needed"] > 0  # re-validation on answers to its current stacks
    table = projects.standing_table(standing)
    assert table.columns.tolist() == ["project", "status", "decides", "answered", "stalled", "answers still needed",
                                      "reason"]
    assert table.set_index("project").loc["steady", "decides"] == "both"


def test_stacks_ingested_after_the_policy_that_drifted_pause_their_project(session_factory):
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    rng = np.random.default_rng(1)
    with session_factory.begin() as session:
        run_id = upsert_model_run(session, name="run", arch="tiny").id
        for project in ("steady", "moved"):
            add_project(session, run_id, project, stalled=40, flowing=160, new=100,
                        reference_scores=np.concatenate([rng.uniform(0.3, 0.7, 40), rng.uniform(0.0, 0.15, 160)]),
                        new_scores=rng.uniform(0.0, 0.15, 100))
        policy = tuning.save_thresholds(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH, reviews_required=1,
                                        actor="test", **TARGETS)
        assert set(project_status(session)["status"]) == {"validated"}
        assert projects.pause_drifted(session, actor="predict") == {}  # nothing ingested since
        for project, shift in (("steady", 0.0), ("moved", 0.5)):
            names = [f"{project}-late{i:03d}.mp4" for i in range(100)]
            import_metadata(session, rows=[MetaRow(name, project, 20) for name in names], source="m.csv",
                            split="test")
            session.execute(update(Stack).where(Stack.filename.in_(names)).values(ingested_at=later))
            frame = pd.DataFrame({"filename": names, "probability": rng.uniform(0.0, 0.15, 100) + shift,
                                  "spread": 0.0, "role": "new", "fold": None})
            assert replace_predictions(session, model_run_id=run_id, predictions=frame).ok
        paused = projects.pause_drifted(session, actor="predict")
        rows = project_status(session).set_index("project_id")
        events = recent_events(session, entity="triage_policy")
    assert list(paused) == ["moved"] and paused["moved"].startswith("drifted: probability: D=")
    assert rows["status"].to_dict() == {"moved": "drifted", "steady": "validated"}
    assert not rows.loc["moved", "low_open"] and not rows.loc["moved", "high_open"]
    assert [e.action for e in events if e.entity_id == str(policy.id)][0] == "project.drift"
    with session_factory() as session:  # every unlabelled stack of moved; none of steady's (all below t_low)
        assert queue_stats(session).routed_to_humans == 200


def test_tune_prints_the_projects_and_saves_their_standing(app_data, capsys):
    url = app_data.settings.db_url
    assert main(["tune", "--db", url, "--sensitivity", "0.85", "--specificity", "0.9", "--confidence", "0.8"]) == 0
    out = capsys.readouterr().out
    table = out.split("projects (each decided automatically only on the sides its own answers validate):\n")[1]
    assert [line.split()[0] for line in table.splitlines()[1:4]] == ["p0", "p1", "p2"]
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        standing = project_status(session)
    engine.dispose()
    assert standing["project_id"].tolist() == ["p0", "p1", "p2"]
    summary = projects.summary(standing)
    assert f"\n{summary}\n" in out and out.rstrip().endswith(summary)  # printed, then named when saved
