"""A policy side stored as NULL decides nothing: the queue routes, counts and exports accordingly."""

from __future__ import annotations

import pandas as pd
import pytest

from db.engine import run_transaction
from db.errors import DatabaseInputError
from db.export import write_export
from db.policy import active_policy, save_policy
from db.queue import claim_next, queue_stats
from tests.db.helpers import add_plain_users, add_scored_stacks

PROBABILITIES = [0.0, 0.05, 0.3, 0.6, 0.95, 1.0]


def _claimed(factory, user_id: int) -> list[float]:
    claimed = []
    while (stack := run_transaction(factory, lambda s: claim_next(s, user_id=user_id, order="stalled"))) is not None:
        claimed.append(stack.probability)
    return claimed


@pytest.mark.parametrize(("t_low", "t_high", "routed"), [
    (None, 0.9, [0.6, 0.3, 0.05, 0.0]),
    (0.1, None, [1.0, 0.95, 0.6, 0.3]),
    (None, None, [1.0, 0.95, 0.6, 0.3, 0.05, 0.0]),
    (0.0, 1.0, [0.95, 0.6, 0.3, 0.05]),  # 0 and 1 are thresholds like any other: p = 0 and p = 1 are decided
])
def test_a_null_side_routes_everything_on_that_side_to_humans(session_factory, t_low, t_high, routed) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, PROBABILITIES)
        (user,) = add_plain_users(session, ["ann"])
        save_policy(session, model_run_id=run_id, t_low=t_low, t_high=t_high, created_by="admin")
    with session_factory() as session:
        stored = active_policy(session)
        assert (stored.t_low, stored.t_high) == (t_low, t_high)
        assert queue_stats(session).routed_to_humans == len(routed)
    assert _claimed(session_factory, user) == routed


def test_export_decides_only_the_side_that_has_a_threshold(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.01, 0.5, 0.99])
        save_policy(session, model_run_id=run_id, t_low=None, t_high=0.9)
    with session_factory() as session:
        write_export(session, path=tmp_path / "labels.csv")
    frame = pd.read_csv(tmp_path / "labels.csv")
    assert frame["source"].tolist() == ["none", "none", "model"]
    assert frame["reason"].tolist()[1:] == ["model uncertain (p=0.500); no reviews", "p=0.990 >= t_high=0.900"]
    assert frame["t_low"].isna().all() and (frame["t_high"] == 0.9).all()


def test_thresholds_outside_the_unit_interval_or_crossed_are_refused(session_factory) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5])
    for t_low, t_high in ((None, 1.5), (-0.1, None), (0.8, 0.2)):
        with pytest.raises(DatabaseInputError, match="t_low|t_high"), session_factory.begin() as session:
            save_policy(session, model_run_id=run_id, t_low=t_low, t_high=t_high)
