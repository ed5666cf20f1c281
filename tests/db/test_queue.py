"""The review queue: what needs review, ordering, exclusive claims, expiry, reviews and their errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.audit import recent_events
from db.engine import run_transaction
from db.errors import ClaimConflictError, DatabaseInputError, UnknownUserError, UnknownVesselError
from db.models import Review, utcnow
from db.policy import save_policy
from db.queue import claim_next, held_claims, queue_stats, submit_review
from tests.db.helpers import add_plain_users, add_scored_stacks

PROBABILITIES = [0.05, 0.12, 0.33, 0.47, 0.52, 0.58, 0.71, 0.9, 0.95, 0.99]


@pytest.fixture
def setup(session_factory):
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, PROBABILITIES, labels={3: 0})
        users = add_plain_users(session, ["ann", "ben", "cat"])
    return run_id, users


def _claim_all(factory, user_id: int, order: str = "boundary") -> list[float]:
    claimed = []
    while (stack := run_transaction(factory, lambda s: claim_next(s, user_id=user_id, order=order))) is not None:
        claimed.append(stack.probability)
    return claimed


def test_without_a_policy_every_unlabelled_prediction_is_served_closest_to_the_boundary_first(session_factory, setup):
    _, (ann, _, _) = setup
    assert _claim_all(session_factory, ann) == [0.52, 0.58, 0.33, 0.71, 0.12, 0.9, 0.95, 0.05, 0.99]


def test_policy_band_ordering_and_rerouting(session_factory, setup):
    run_id, (ann, ben, _) = setup
    with session_factory.begin() as session:
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=2, created_by="admin")
        assert queue_stats(session).routed_to_humans == 4
    assert _claim_all(session_factory, ann, order="stalled") == [0.71, 0.58, 0.52, 0.33]
    assert _claim_all(session_factory, ben) == []  # all four are held by ann
    with session_factory.begin() as session:
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.95, created_by="admin")
        assert [e.action for e in recent_events(session, entity="triage_policy")][:2] == ["policy.activate", "policy.save"]
    assert _claim_all(session_factory, ben) == [0.12, 0.9]  # the new band, minus ann's claims


def test_claims_are_exclusive_and_expire(session_factory, setup):
    _, (ann, ben, _) = setup
    first = run_transaction(session_factory, lambda s: claim_next(s, user_id=ann))
    second = run_transaction(session_factory, lambda s: claim_next(s, user_id=ben))
    assert (first.probability, second.probability) == (0.52, 0.58)
    later = utcnow() + timedelta(minutes=11)
    third = run_transaction(session_factory, lambda s: claim_next(s, user_id=ben, now=later))
    assert third.vessel_id == first.vessel_id  # ann's claim expired after 10 minutes
    with session_factory.begin() as session:
        assert [c.vessel_id for c in held_claims(session, user_id=ben)] == [second.vessel_id, first.vessel_id]


def test_reviews_count_towards_k_and_a_reviewer_never_sees_a_stack_twice(session_factory, setup):
    run_id, (ann, ben, cat) = setup
    with session_factory.begin() as session:
        save_policy(session, model_run_id=run_id, t_low=0.5, t_high=0.55, reviews_required=2)
    stack = run_transaction(session_factory, lambda s: claim_next(s, user_id=ann))
    with session_factory.begin() as session, pytest.raises(ClaimConflictError, match="s004.mp4 is claimed by ann"):
        submit_review(session, user_id=ben, vessel_id=stack.vessel_id, answer="stalled")
    run_transaction(session_factory, lambda s: submit_review(s, user_id=ann, vessel_id=stack.vessel_id,
                                                             answer="stalled", seconds=4.2))
    assert run_transaction(session_factory, lambda s: claim_next(s, user_id=ann)) is None
    assert run_transaction(session_factory, lambda s: claim_next(s, user_id=ben)).vessel_id == stack.vessel_id
    run_transaction(session_factory, lambda s: submit_review(s, user_id=ben, vessel_id=stack.vessel_id, answer="flowing"))
    assert run_transaction(session_factory, lambda s: claim_next(s, user_id=cat)) is None  # k = 2 reached
    run_transaction(session_factory, lambda s: submit_review(s, user_id=ben, vessel_id=stack.vessel_id, answer="stalled"))
    with session_factory() as session:
        edits = recent_events(session, entity="review")
        assert [(e.actor, e.details["from"], e.details["to"]) for e in edits] == [("ben", "flowing", "stalled")]
        stats = queue_stats(session)
        assert (stats.routed_to_humans, stats.done, stats.remaining) == (1, 1, 0)


def test_half_reviewed_stacks_come_before_fresh_ones(session_factory, setup):
    run_id, (ann, ben, _) = setup
    with session_factory.begin() as session:
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=2)
        submit_review(session, user_id=ann, vessel_id=PROBABILITIES.index(0.33) + 1, answer="flowing")
    assert _claim_all(session_factory, ben)[:2] == [0.33, 0.52]


def test_bad_requests_are_refused_with_a_clear_message(session_factory, setup):
    _, (ann, _, _) = setup
    with session_factory() as session:
        with pytest.raises(UnknownUserError, match="no active user with id 9999"):
            claim_next(session, user_id=9999)
        with pytest.raises(UnknownUserError):
            submit_review(session, user_id=9999, vessel_id=1, answer="stalled")
        with pytest.raises(UnknownVesselError, match="no stack with id 424242"):
            submit_review(session, user_id=ann, vessel_id=424242, answer="stalled")
        with pytest.raises(DatabaseInputError, match="answer must be one of"):
            submit_review(session, user_id=ann, vessel_id=1, answer="maybe")
        with pytest.raises(DatabaseInputError, match="order must be one of"):
            claim_next(session, user_id=ann, order="sideways")


def test_a_review_records_the_k_in_force_when_given_and_when_edited(session_factory, setup):
    run_id, (ann, ben, _) = setup
    recorded = select(Review.reviews_required).where(Review.vessel_id == 5).order_by(Review.user_id)
    with session_factory.begin() as session:
        submit_review(session, user_id=ann, vessel_id=5, answer="stalled")  # no policy: k = 1
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=3)
        submit_review(session, user_id=ben, vessel_id=5, answer="stalled")
        assert session.scalars(recorded).all() == [1, 3]
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=2)
        submit_review(session, user_id=ann, vessel_id=5, answer="flowing")  # an edit
        submit_review(session, user_id=ben, vessel_id=5, answer="stalled")  # the same answer: no edit
        assert session.scalars(recorded).all() == [2, 3]
