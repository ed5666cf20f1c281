"""Many reviewers at once: no stack held by two at a time, no review lost or duplicated, no errors.

16 worker processes each make up to 200 claim + review rounds over 1,000 stacks (k = 1 and
k = 3), on SQLite and on PostgreSQL. Each reviewer preloads as the review viewer does: it holds
the stack it answers and the next one (``claim_window``), and a stack counts as held from the
moment it was claimed as the next one. Run with ``-s`` to see the throughput.

The 200-round cap can bind: at k = 3 the 3,000 reviews needed fill 94 % of the 3,200 rounds, and
SQLite's write lock is unfair enough that most reviewers reach 200 while a few lag. A stack may
then end short of k reviews only when every reviewer who had rounds left has already answered it;
anything else is a stack the queue skipped.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import defaultdict

import numpy as np
import pytest
from sqlalchemy import exists, func, select

from db.engine import make_engine, make_session_factory, run_transaction
from db.models import Claim, Prediction, Review, utcnow
from db.policy import save_policy
from db.queue import claim_window, held_claims, submit_review
from triage_app.services import PRELOADED
from tests.db.helpers import add_plain_users, add_scored_stacks, give_back

WORKERS, ROUNDS, STACKS = 16, 200, 1000


def _claims_held(session) -> bool:  # noqa: ANN001 - a Session
    return session.scalar(select(exists().where(Claim.expires_at > utcnow())))


def _leave(session, user_id: int) -> None:  # noqa: ANN001 - a Session
    """A reviewer who stops gives back the stacks still on their screen (in the app they expire)."""
    for claim in held_claims(session, user_id=user_id):
        give_back(session, user_id=user_id, vessel_id=claim.vessel_id)


def _review_loop(url: str, user_id: int, barrier, results) -> None:  # noqa: ANN001 - multiprocessing objects
    """One reviewer: hold the stack shown and the next, answer the first, repeat until 200 reviews or
    nothing is left; reports holds (vessel, claimed, answered) and errors."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    holds, errors = [], []
    claimed_at: dict[int, float] = {}
    others_held = True  # asked after an empty claim, before the next: a stack given back later is seen by it
    barrier.wait()
    while len(holds) < ROUNDS and len(errors) < 5:
        try:
            window = run_transaction(factory, lambda s: claim_window(s, user_id=user_id, size=PRELOADED))
            now = time.time()  # every claim in the window is committed, so held from here on
            for claimed in window:
                claimed_at.setdefault(claimed.vessel_id, now)
            if not window:
                # Nothing for this reviewer now; stacks others hold may come back if they need more reviews.
                if not others_held:
                    break
                others_held = run_transaction(factory, _claims_held, write=False)
                time.sleep(0.02)
                continue
            others_held = True
            stack = window[0]
            answer = "stalled" if stack.probability >= 0.5 else "flowing"
            held_until = time.time()
            run_transaction(factory, lambda s: submit_review(s, user_id=user_id, vessel_id=stack.vessel_id,
                                                             answer=answer))
            holds.append((stack.vessel_id, claimed_at.pop(stack.vessel_id), held_until))
        except Exception as error:  # noqa: BLE001 - every error is a test failure, reported below
            errors.append(f"{type(error).__name__}: {error}")
    run_transaction(factory, lambda s: _leave(s, user_id))
    engine.dispose()
    results.put((user_id, holds, errors))


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 3])
def test_concurrent_reviewers(db_url: str, k: int) -> None:
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    probabilities = np.random.default_rng(k).uniform(0.01, 0.99, STACKS).round(6).tolist()
    with factory.begin() as session:
        run_id = add_scored_stacks(session, probabilities)
        users = add_plain_users(session, [f"reviewer{i:02d}" for i in range(WORKERS)])
        save_policy(session, model_run_id=run_id, t_low=0.0, t_high=1.0, reviews_required=k)
    engine.dispose()

    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(WORKERS + 1), context.Queue()
    processes = [context.Process(target=_review_loop, args=(db_url, user_id, barrier, results)) for user_id in users]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get(timeout=300) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join(timeout=30)

    errors = [error for _, _, worker_errors in outcomes for error in worker_errors]
    assert errors == []
    reported = sorted((vessel, user) for user, holds, _ in outcomes for vessel, _, _ in holds)
    with factory() as session:
        stored = sorted(tuple(row) for row in session.execute(select(Review.vessel_id, Review.user_id)))
        vessels = session.scalars(select(Prediction.vessel_id).where(Prediction.model_run_id == run_id)).all()
        assert session.scalar(select(func.count()).select_from(Claim)) == 0
    engine.dispose()
    assert stored == reported  # nothing lost, nothing extra
    assert len(stored) == len(set(stored))  # no reviewer answered a stack twice
    reviewers = defaultdict(set)
    for vessel, user in stored:
        reviewers[vessel].add(user)
    assert max(len(users) for users in reviewers.values()) <= k
    with_rounds_left = {user for user, holds, _ in outcomes if len(holds) < ROUNDS}
    skipped = [vessel for vessel in vessels if len(reviewers[vessel]) < k and with_rounds_left - reviewers[vessel]]
    assert skipped == []

    by_vessel = defaultdict(list)
    for user, holds, _ in outcomes:
        for vessel, held_from, held_until in holds:
            by_vessel[vessel].append((held_from, held_until, user))
    overlaps = [(vessel, a, b) for vessel, spans in by_vessel.items()
                for a, b in zip(sorted(spans), sorted(spans)[1:]) if b[0] < a[1]]
    assert overlaps == []
    backend = db_url.split(":", 1)[0]
    print(f"\n{backend} k={k}: {len(stored)} reviews by {WORKERS} processes in {elapsed:.1f} s "
          f"= {len(stored) / elapsed:.0f} reviews/s (claim + review per round)")
