"""Activating a retrained run: only when its tuned policy meets the targets and decides no less; no review
lost while it happens (concurrent reviewer processes, SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, update

from db.engine import make_engine, make_session_factory, run_transaction
from db.models import Prediction, Review, Stack
from db.policy import active_policy, save_policy
from db.predictions import replace_predictions, upsert_model_run
from db.queue import claim_next, submit_review
from db.queue_levels import COUNTED
from db.vessels import import_labels, import_metadata
from tests.db.conftest import session_factory  # noqa: F401 - a fixture
from tests.db.helpers import LabelRow, MetaRow, add_plain_users
from triage_app.retraining import read_status, scoring_run, status_path, tune_and_activate, write_status

LABELLED, POOL = 200, 120
STALLED = [i % 5 == 0 for i in range(LABELLED)]  # 40 stalls


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:04d}.mp4" for i in range(n)]


def _add_stacks(session) -> None:  # noqa: ANN001 - a Session
    import_metadata(session, rows=[MetaRow(n, f"p{i % 4}", 20, float(s), True)
                                   for i, (n, s) in enumerate(zip(_names("l", LABELLED), STALLED))],
                    source="train_metadata.csv", split="train")
    import_labels(session, rows=[LabelRow(n, int(s)) for n, s in zip(_names("l", LABELLED), STALLED)],
                  source="train_labels.csv")
    import_metadata(session, rows=[MetaRow(n, "p0", 20) for n in _names("t", POOL)], source="test_metadata.csv",
                    split="test")
    session.execute(update(Stack).values(status="ok"))


def _add_run(session, name: str, labelled: list[float], pool: list[float]) -> int:  # noqa: ANN001 - a Session
    run = upsert_model_run(session, name=name, arch="tiny", threshold=0.5)
    frame = pd.DataFrame({"filename": _names("l", LABELLED) + _names("t", POOL), "probability": labelled + pool,
                          "spread": 0.0, "role": ["out_of_fold"] * LABELLED + ["new"] * POOL,
                          "fold": 0})
    assert replace_predictions(session, model_run_id=run.id, predictions=frame).ok
    return run.id


def _scores(stalled: float, flowing: list[float]) -> list[float]:
    return [stalled if s else flowing[i % len(flowing)] for i, s in enumerate(STALLED)]


@pytest.fixture
def old_policy(session_factory):
    """Run "old" (stalls at 0.97; flowing half at 0.03, half at 0.5) under an active policy deciding part of it."""
    with session_factory.begin() as session:
        _add_stacks(session)
        run_id = _add_run(session, "old", _scores(0.97, [0.03, 0.5]), [0.5] * POOL)
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=1,
                    target_sensitivity=0.5, target_specificity=0.5, confidence=0.95, created_by="test")
    return run_id


def test_a_better_run_is_activated(session_factory, old_policy) -> None:
    with session_factory.begin() as session:
        new = _add_run(session, "better", _scores(0.97, [0.03]), [0.4] * POOL)
        outcome = tune_and_activate(session, model_run_id=new)
    assert outcome.activated, outcome.reason
    assert outcome.new_auto_share > outcome.old_auto_share > 0
    with session_factory() as session:
        policy = active_policy(session)
        assert policy.model_run_id == new and policy.created_by == "retrain"
        assert (policy.target_sensitivity, policy.target_specificity, policy.reviews_required) == (0.5, 0.5, 1)
        assert scoring_run(session, session.scalar(select(Stack.id).where(Stack.filename == "t0000.mp4"))) == "better"


def test_a_run_that_decides_less_is_refused(session_factory, old_policy) -> None:
    with session_factory.begin() as session:
        new = _add_run(session, "inverted", _scores(0.03, [0.97]), [0.5] * POOL)
        outcome = tune_and_activate(session, model_run_id=new)
    assert not outcome.activated and "less than the active one's" in outcome.reason
    with session_factory() as session:
        assert active_policy(session).model_run_id == old_policy


def test_a_run_whose_bounds_miss_the_targets_is_refused(session_factory, old_policy) -> None:
    with session_factory.begin() as session:
        session.execute(update(active_policy(session).__class__).values(target_sensitivity=0.999,
                                                                        target_specificity=0.999,
                                                                        promise="absolute"))
        new = _add_run(session, "inverted", _scores(0.03, [0.97]), [0.5] * POOL)
        outcome = tune_and_activate(session, model_run_id=new)
    assert not outcome.activated and "misses the targets" in outcome.reason
    with session_factory() as session:
        assert active_policy(session).model_run_id == old_policy


def test_status_file_round_trip(tmp_path) -> None:
    path = status_path(tmp_path)
    assert read_status(path) is None
    write_status(path, "training", "fine-tuning", run="r1")
    status = read_status(path)
    assert (status["state"], status["message"], status["run"]) == ("training", "fine-tuning", "r1")


WORKERS = 4


def _review_loop(url: str, user_id: int, barrier, results) -> None:  # noqa: ANN001 - multiprocessing objects
    """One reviewer: claim and answer until the queue is empty for them; reports (vessel, answer) and errors."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    done, errors = [], []
    barrier.wait()
    while len(errors) < 3:
        try:
            stack = run_transaction(factory, lambda s: claim_next(s, user_id=user_id))
            if stack is None:
                break
            time.sleep(0.005)
            run_transaction(factory, lambda s: submit_review(s, user_id=user_id, vessel_id=stack.vessel_id,
                                                             answer="stalled"))
            done.append(stack.vessel_id)
        except Exception as error:  # noqa: BLE001 - every error is a test failure, reported below
            errors.append(f"{type(error).__name__}: {error}")
    engine.dispose()
    results.put((user_id, done, errors))


@pytest.mark.slow
def test_no_review_lost_while_a_run_is_activated(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        _add_stacks(session)
        old = _add_run(session, "old", _scores(0.97, [0.03, 0.5]), [0.5] * POOL)
        save_policy(session, model_run_id=old, t_low=0.1, t_high=0.9, target_sensitivity=0.5,
                    target_specificity=0.5, confidence=0.95, promise="absolute")  # routes the pool: humans err
        users = add_plain_users(session, [f"r{i}" for i in range(WORKERS)])
    engine.dispose()
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WORKERS + 1), context.Queue()
    processes = [context.Process(target=_review_loop, args=(db_url, user, barrier, results)) for user in users]
    for process in processes:
        process.start()
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    barrier.wait()
    pool = np.linspace(0.3, 0.6, POOL).tolist()  # the new run still routes every pool stack to humans
    new = run_transaction(factory, lambda s: _add_run(s, "new", _scores(0.97, [0.03]), pool))
    outcome = run_transaction(factory, lambda s: tune_and_activate(s, model_run_id=new))
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert outcome.activated, outcome.reason
    assert [error for _, _, errors in outcomes for error in errors] == []
    reported = sorted(vessel for _, done, _ in outcomes for vessel in done)
    with factory() as session:
        stored = sorted(session.scalars(select(Review.vessel_id)))
        pool_answers = session.scalar(select(func.count()).select_from(Review)
                                      .join(Stack, Stack.id == Review.vessel_id).where(Stack.split == "test"))
        counted = dict(session.execute(select(Review.vessel_id, func.count())
                                       .join(Stack, Stack.id == Review.vessel_id)
                                       .where(COUNTED, Stack.split == "test").group_by(Review.vessel_id)).all())
        levels = dict(session.execute(select(Prediction.vessel_id, Prediction.review_level)
                                      .where(Prediction.model_run_id == new,
                                             Prediction.vessel_id.in_(counted))).all())
    engine.dispose()
    assert stored == reported  # nothing lost, nothing extra (known-answer stacks are served too)
    assert pool_answers == POOL  # every pool stack answered once
    assert len(counted) == POOL and levels == counted  # the new run's queue counts every answer, also those given during activation


def test_a_retrain_started_like_the_app_does_reports_through_its_status_file(sqlite_db_url, tmp_path) -> None:
    from triage_app.retraining import is_running, start_retrain
    from triage_app.settings import Settings

    settings = Settings(data_dir=tmp_path, db_url=sqlite_db_url, store_path=tmp_path / "store")
    pid = start_retrain(settings, minutes=1)
    status = read_status(status_path(tmp_path))
    assert status["pid"] == pid and status["state"] == "starting"
    deadline = time.monotonic() + 120
    while is_running(read_status(status_path(tmp_path))) and time.monotonic() < deadline:
        time.sleep(0.5)
    status = read_status(status_path(tmp_path))
    assert status["state"] == "failed" and "no active policy" in status["message"]  # nothing to keep the targets of
    assert "no active policy" in (tmp_path / "retrain" / "retrain.log").read_text()
