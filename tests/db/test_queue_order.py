"""Queue orders that teach: ensemble disagreement first, random draws, the boundary/random mix, the admin setting."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import update

from db.audit import recent_events
from db.engine import run_transaction
from db.errors import DatabaseInputError
from db.known_answers import set_known_answer_rate
from db.models import Prediction
from db.policy import save_policy
from db.queue import claim_next
from db.queue_order import MIX_RANDOM_SHARE, queue_order, set_queue_order
from tests.db.helpers import add_plain_users, add_scored_stacks, give_back

PROBABILITIES = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
SPREADS = [0.05, 0.30, 0.01, 0.02, 0.20, None]


@pytest.fixture
def setup(session_factory):
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, PROBABILITIES)
        for vessel, spread in enumerate(SPREADS, start=1):
            session.execute(update(Prediction).where(Prediction.vessel_id == vessel).values(spread=spread))
        save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9)
        set_known_answer_rate(session, rate=0.0, actor="test")
        users = add_plain_users(session, ["ann", "ben"])
    return users


def _claim_all(factory, user_id: int, order: str | None = None, rng: random.Random | None = None) -> list[float]:
    claimed = []
    while (stack := run_transaction(factory, lambda s: claim_next(s, user_id=user_id, order=order,
                                                                  rng=rng))) is not None:
        claimed.append(stack.probability)
    return claimed


def test_uncertainty_serves_the_largest_spread_first_then_stacks_without_one(session_factory, setup):
    ann, _ = setup
    assert _claim_all(session_factory, ann, "uncertainty") == [0.3, 0.6, 0.2, 0.5, 0.4, 0.7]


def test_random_order_reaches_every_stack_in_varying_order(session_factory, setup):
    ann, ben = setup
    first = []
    for seed in range(12):
        with session_factory.begin() as session:
            stack = claim_next(session, user_id=ann, order="random", rng=random.Random(seed))
            first.append(stack.probability)
            give_back(session, user_id=ann, vessel_id=stack.vessel_id)
    assert len(set(first)) >= 3  # not one fixed stack
    assert sorted(_claim_all(session_factory, ben, "random", random.Random(1))) == PROBABILITIES


def test_mix_draws_about_one_in_five_at_random(session_factory, setup):
    ann, _ = setup
    rng = random.Random(7)
    served = Counter()
    for _ in range(200):
        with session_factory.begin() as session:
            stack = claim_next(session, user_id=ann, order="mix", rng=rng)
            served[stack.probability] += 1
            give_back(session, user_id=ann, vessel_id=stack.vessel_id)
    boundary_first = served[0.5]  # the boundary order always serves 0.5 first (threshold 0.5)
    others = 200 - boundary_first
    expected = 200 * MIX_RANDOM_SHARE * (1 - 1 / len(PROBABILITIES))
    assert 0.5 * expected < others < 1.6 * expected


def test_the_admin_setting_chooses_the_order_and_is_audited(session_factory, setup):
    ann, _ = setup
    with session_factory.begin() as session:
        assert queue_order(session) == "boundary"
        set_queue_order(session, order="uncertainty", actor="boss")
        with pytest.raises(DatabaseInputError, match="queue order must be one of"):
            set_queue_order(session, order="loudest", actor="boss")
    assert _claim_all(session_factory, ann)[:2] == [0.3, 0.6]
    with session_factory() as session:
        assert queue_order(session) == "uncertainty"
        changes = [(e.action, e.entity_id, e.actor, e.details["to"])
                   for e in recent_events(session, entity="app_setting")]
    assert ("setting.change", "queue_order", "boss", "uncertainty") in changes
