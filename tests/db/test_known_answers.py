"""Known-answer stacks in the queue: served at the admin's rate, from the routed band, never twice, recorded,
only when ingested."""

from __future__ import annotations

import random
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import exists, func, select, update

from db.audit import recent_events
from db.engine import make_engine, make_session_factory, run_transaction
from db.errors import DatabaseInputError
from db.known_answers import DEFAULT_RATE, known_answer_rate, known_answer_reviews, set_known_answer_rate
from db.models import Review, Stack
from db.policy import save_policy
from db.predictions import replace_predictions, upsert_model_run
from db.queue import claim_next, queue_stats, submit_review
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users


def add_queue(session, *, routed: int, known: list[tuple[float, int]], untrusted: int = 0) -> int:
    """``routed`` unlabelled stacks at p=0.5, tier-1 known answers (probability, label) and
    ``untrusted`` non-tier-1 labelled stacks at p=0.5, all scored by one run; returns the run id."""
    regular = [f"r{i:04d}.mp4" for i in range(routed)]
    calibration = [f"k{i:04d}.mp4" for i in range(len(known))]
    doubtful = [f"u{i:04d}.mp4" for i in range(untrusted)]
    import_metadata(session, rows=[MetaRow(name, "p", 20, 0.5, False) for name in regular], source="m.csv",
                    split="test")
    import_metadata(session, rows=[MetaRow(name, "p", 20, float(label), True)
                                   for name, (_, label) in zip(calibration, known)]
                    + [MetaRow(name, "p", 20, 0.5, False) for name in doubtful], source="t.csv", split="train")
    import_labels(session, rows=[LabelRow(name, label) for name, (_, label) in zip(calibration, known)]
                  + [LabelRow(name, 1) for name in doubtful], source="labels.csv")
    session.execute(update(Stack).values(status="ok"))  # ingested: a known-answer stack must be showable
    run = upsert_model_run(session, name="run", threshold=0.5)
    probabilities = [0.5] * routed + [p for p, _ in known] + [0.5] * untrusted
    frame = pd.DataFrame({"filename": regular + calibration + doubtful, "probability": probabilities,
                          "spread": 0.0, "role": "new", "fold": 0})
    assert replace_predictions(session, model_run_id=run.id, predictions=frame).ok
    return run.id


PATIENCE_S = 30.0
"""How long a concurrent reviewer may be told "nothing now" while a routed stack still needs their review."""


def needs_review_by(session, user_id: int, k: int) -> bool:
    """Whether a routed stack (``r…``) still has fewer than k reviews, none of them by this user."""
    reviews = select(func.count()).where(Review.vessel_id == Stack.id).scalar_subquery()
    mine = exists().where(Review.vessel_id == Stack.id, Review.user_id == user_id)
    return session.scalar(select(exists().where(Stack.filename.like("r%"), reviews < k, ~mine)))


def review_all(factory, user_id: int, rng: random.Random, answer: str = "stalled", *,
               concurrent_k: int | None = None) -> list[str]:
    """Claim and answer until the queue is empty for the user; the filenames served, in order.

    With other reviewers at work (``concurrent_k`` = the policy's k), no stack now is not the end:
    on PostgreSQL claim_next skips a stack that another reviewer's open transaction holds, and
    once that review commits the stack may still need this user's. So ask again while a routed
    stack needs this user (read after the empty claim); it must be served within PATIENCE_S.
    """
    served = []
    waiting_since = None
    while True:
        def work(session):
            stack = claim_next(session, user_id=user_id, rng=rng)
            if stack is not None:
                submit_review(session, user_id=user_id, vessel_id=stack.vessel_id, answer=answer)
            return stack

        stack = run_transaction(factory, work, write=True)
        if stack is not None:
            served.append(stack.filename)
            waiting_since = None
            continue
        if concurrent_k is None or not run_transaction(
                factory, lambda session: needs_review_by(session, user_id, concurrent_k), write=False):
            return served
        waiting_since = waiting_since or time.monotonic()
        assert time.monotonic() - waiting_since < PATIENCE_S, f"user {user_id}: work left but none served"
        time.sleep(0.01)


def test_known_answer_stacks_are_served_at_about_the_set_rate_and_recorded(session_factory) -> None:
    with session_factory.begin() as session:
        add_queue(session, routed=300, known=[(0.5, i % 2) for i in range(200)], untrusted=20)
        session.execute(update(Stack).where(Stack.filename < "k0100.mp4", Stack.filename >= "k")
                        .values(status="failed"))
        ann, = add_plain_users(session, ["ann"])
        assert known_answer_rate(session) == DEFAULT_RATE
    served = review_all(session_factory, ann, random.Random(7))
    known = [name for name in served if name.startswith("k")]
    assert len(served) - len(known) == 300  # every regular stack, and no untrusted labelled one
    assert not any(name.startswith("u") or "k0000.mp4" <= name < "k0100.mp4" for name in served)
    assert 0.06 <= len(known) / len(served) <= 0.14  # 1 in 10, binomial noise of ~330 draws
    assert len(set(served)) == len(served)
    with session_factory() as session:
        flagged = session.query(Review).filter(Review.known_answer.is_(True)).count()
        reviews = known_answer_reviews(session)
        stats = queue_stats(session)
    assert flagged == len(known)
    assert set(reviews["filename"]) == set(known) and (reviews["user"] == "ann").all()
    assert reviews["answer"].eq(1).all() and set(reviews["truth"]) <= {0, 1}
    assert stats.routed_to_humans == 300 and stats.done == 300  # calibration answers are not queue work


def test_the_admin_sets_the_rate_and_the_change_is_audited(session_factory) -> None:
    with session_factory.begin() as session:
        add_queue(session, routed=200, known=[(0.5, 1)] * 200)
        ann, = add_plain_users(session, ["ann"])
        set_known_answer_rate(session, rate=0.3, actor="boss")
        with pytest.raises(DatabaseInputError, match="between 0 and 0.5"):
            set_known_answer_rate(session, rate=0.9, actor="boss")
    with session_factory() as session:
        assert known_answer_rate(session) == 0.3
        event, = recent_events(session, entity="app_setting")
        assert (event.actor, event.action, event.details) == ("boss", "setting.change", {"from": None, "to": 0.3})
    served = review_all(session_factory, ann, random.Random(3))
    share = sum(name.startswith("k") for name in served) / len(served)
    assert 0.22 <= share <= 0.38
    with session_factory.begin() as session:
        set_known_answer_rate(session, rate=0.0, actor="boss")
        add_plain_users(session, ["ben"])
    ben = 2
    assert not any(name.startswith("k") for name in review_all(session_factory, ben, random.Random(3)))


def test_a_reviewer_never_gets_a_known_answer_stack_twice_and_only_while_there_is_work(session_factory) -> None:
    with session_factory.begin() as session:
        run_id = add_queue(session, routed=60, known=[(0.5, 0), (0.5, 1), (0.5, 1)])
        ann, ben = add_plain_users(session, ["ann", "ben"])
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=2)
        set_known_answer_rate(session, rate=0.5, actor="boss")
    for user in (ann, ben):
        served = review_all(session_factory, user, random.Random(user))
        assert sorted(name for name in served if name.startswith("k")) == ["k0000.mp4", "k0001.mp4", "k0002.mp4"]
    with session_factory.begin() as session:  # no regular work left: no calibration either
        cat, = add_plain_users(session, ["cat"])
        save_policy(session, model_run_id=run_id, t_low=0.6, t_high=0.9)
    assert review_all(session_factory, cat, random.Random(1)) == []


def test_known_answer_stacks_come_from_the_routed_band_while_it_has_any(session_factory) -> None:
    inside = [(0.4, 1), (0.6, 0)]
    outside = [(0.02, 0), (0.97, 1), (0.01, 0)]
    with session_factory.begin() as session:
        run_id = add_queue(session, routed=80, known=inside + outside)
        ann, = add_plain_users(session, ["ann"])
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9)
        set_known_answer_rate(session, rate=0.5, actor="boss")
    served = [name for name in review_all(session_factory, ann, random.Random(5)) if name.startswith("k")]
    assert sorted(served[:2]) == ["k0000.mp4", "k0001.mp4"]
    assert sorted(served[2:]) == ["k0002.mp4", "k0003.mp4", "k0004.mp4"]


def test_concurrent_reviewers_each_get_known_answer_stacks_once(db_url: str) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        run_id = add_queue(session, routed=80, known=[(0.5, i % 2) for i in range(12)])
        users = add_plain_users(session, ["ann", "ben", "cat", "dan"])
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=2)
        set_known_answer_rate(session, rate=0.5, actor="boss")
    served: dict[int, list[str]] = {}
    errors: list[str] = []
    barrier = threading.Barrier(len(users))

    def reviewer(user_id: int) -> None:
        own = make_engine(db_url)
        try:
            barrier.wait()
            served[user_id] = review_all(make_session_factory(own), user_id, random.Random(user_id), concurrent_k=2)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(f"{type(error).__name__}: {error}")
        finally:
            own.dispose()

    threads = [threading.Thread(target=reviewer, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with factory() as session:
        reviews = known_answer_reviews(session)
        counted = session.query(Review).filter(Review.known_answer.is_(False)).count()
    engine.dispose()
    for user_id, names in served.items():
        assert len(names) == len(set(names))  # never twice to one reviewer
    calibration = sum(name.startswith("k") for names in served.values() for name in names)
    regular = sum(not name.startswith("k") for names in served.values() for name in names)
    assert calibration == len(reviews) > 0 and regular == counted == 160  # 80 routed stacks x k = 2, none lost
    user_names = dict(zip(users, ["ann", "ben", "cat", "dan"]))
    assert sorted((user_names[user_id], name) for user_id, names in served.items() for name in names
                  if name.startswith("k")) == sorted(zip(reviews["user"], reviews["filename"]))
