"""The project gate in every rendering of the band rule, on one case table (SQLite and PostgreSQL):
numpy decisions, the queue's SQL (served, routed count) and the export's pandas (source, reason);
then the queue serving a gated project's stacks first, at random, about as many as its gate needs."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from core.policy.band import BandRule, Decision
from db.engine import run_transaction
from db.export import final_labels
from db.models import Claim, Review, Stack
from db.policy import save_policy
from db.predictions import replace_predictions, upsert_model_run
from db.project_status import GateSides, save_project_status
from db.queue import claim_next, queue_stats, submit_review
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users

F, S, H = Decision.FLOWING, Decision.STALLED, Decision.HUMAN
T_LOW, T_HIGH = 0.25, 0.75
# project -> (status, low_open, high_open, stacks_needed); "unknown" has no row (first seen after the save)
STANDING = {"open": ("validated", True, True, 0), "low only": ("gated", True, False, 0),
            "closed": ("gated", False, False, 0), "moved": ("drifted", False, False, 0)}
CASES = [  # project, p, crowd label, decision, served, source, reason
    ("open", 0.1, None, F, False, "model", "p=0.100 <= t_low=0.250"),
    ("open", 0.9, None, S, False, "model", "p=0.900 >= t_high=0.750"),
    ("open", 0.5, None, H, True, "none", "model uncertain (p=0.500); no reviews"),
    ("low only", 0.1, None, F, False, "model", "p=0.100 <= t_low=0.250"),
    ("low only", 0.9, None, H, True, "none", "project not yet validated (p=0.900 >= t_high=0.750); no reviews"),
    ("closed", 0.1, None, H, True, "none", "project not yet validated (p=0.100 <= t_low=0.250); no reviews"),
    ("closed", 0.25, 0, H, False, "crowd", "crowd label; project not yet validated (p=0.250 <= t_low=0.250); "
                                           "no reviews"),
    ("moved", 0.9, None, H, True, "none", "project drifted (p=0.900 >= t_high=0.750); no reviews"),
    ("unknown", 0.1, None, H, True, "none", "project not yet validated (p=0.100 <= t_low=0.250); no reviews"),
]
GATES = GateSides(open_low=frozenset({"open", "low only"}), open_high=frozenset({"open"}), drifted=frozenset({"moved"}))


def _stacks(session, rows: list[tuple[str, float, int | None]]) -> int:
    """Stacks ``s000.mp4``… of the given projects, scored as new by one run; returns its id."""
    names = [f"s{i:03d}.mp4" for i in range(len(rows))]
    import_metadata(session, rows=[MetaRow(name, project, 20) for name, (project, _, _) in zip(names, rows)],
                    source="meta.csv", split="test")
    labels = [LabelRow(name, crowd) for name, (_, _, crowd) in zip(names, rows) if crowd is not None]
    if labels:
        import_labels(session, rows=labels, source="labels.csv")
    run = upsert_model_run(session, name="run", arch="tiny", threshold=0.5)
    frame = pd.DataFrame({"filename": names, "probability": [p for _, p, _ in rows], "spread": 0.0, "role": "new",
                          "fold": None})
    assert replace_predictions(session, model_run_id=run.id, predictions=frame).ok
    return run.id


def _gated_policy(session, run_id: int, standing: dict) -> int:
    policy = save_policy(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH)
    save_project_status(session, policy_id=policy.id, rows=[
        {"project_id": project, "status": status, "low_open": low, "high_open": high, "answered": 0, "stalled": 0,
         "stacks_needed": needed, "gate_reviews": 0, "reason": status, "details": {}}
        for project, (status, low, high, needed) in standing.items()])
    return policy.id


def test_numpy_rendering_of_the_gate():
    projects = pd.Series([project for project, *_ in CASES])
    low_open, high_open = GATES.opens(projects)
    band = replace(BandRule.of(T_LOW, T_HIGH), low_open=low_open.to_numpy(), high_open=high_open.to_numpy())
    assert band.decide(np.array([p for _, p, *_ in CASES])).tolist() == [decision for _, _, _, decision, *_ in CASES]


def test_sql_and_pandas_renderings_of_the_gate(session_factory):
    with session_factory.begin() as session:
        run_id = _stacks(session, [(project, p, crowd) for project, p, crowd, *_ in CASES])
        _gated_policy(session, run_id, STANDING)
        user, = add_plain_users(session, ["zed"])
    names = [f"s{i:03d}.mp4" for i in range(len(CASES))]
    with session_factory() as session:
        assert queue_stats(session).routed_to_humans == sum(served for *_, served, _, _ in CASES)
        frame = pd.concat(final_labels(session)).set_index("filename").loc[names]
    assert frame["source"].tolist() == [source for *_, source, _ in CASES]
    assert frame["reason"].tolist() == [reason for *_, reason in CASES]
    claimed = []
    while (stack := run_transaction(session_factory, lambda s: claim_next(s, user_id=user, order="stalled"))):
        claimed.append(names[stack.vessel_id - 1])
    assert sorted(claimed) == [name for name, case in zip(names, CASES) if case[4]]


def test_without_the_gate_every_project_is_decided_alike(session_factory):
    with session_factory.begin() as session:
        run_id = _stacks(session, [("closed", 0.1, None), ("unknown", 0.9, None)])
        save_policy(session, model_run_id=run_id, t_low=T_LOW, t_high=T_HIGH)
    with session_factory() as session:
        assert queue_stats(session).routed_to_humans == 0
        assert pd.concat(final_labels(session))["source"].tolist() == ["model", "model"]


@pytest.fixture
def gated_queue(session_factory):
    """30 stacks of a validated project in the band around 0.5, 30 of a gated project (scores spread
    over (0, 1)) whose gate wants 3 more answers; one reviewer."""
    rows = [("known", 0.45 + i / 300, None) for i in range(30)] + [("new", (i + 0.5) / 30, None) for i in range(30)]
    with session_factory.begin() as session:
        run_id = _stacks(session, rows)
        _gated_policy(session, run_id, {"known": ("validated", True, True, 0), "new": ("gated", False, False, 3)})
        user, = add_plain_users(session, ["ann"])
    return session_factory, user


def _claim(factory, user: int, rng: random.Random):
    return run_transaction(factory, lambda s: claim_next(s, user_id=user, order="boundary", rng=rng))


def _project(factory, vessel_id: int) -> str:
    with factory() as session:
        return session.scalar(select(Stack.project_id).where(Stack.id == vessel_id))


def test_the_queue_serves_a_gated_projects_stacks_first_as_many_as_its_gate_needs(gated_queue):
    factory, user = gated_queue
    rng = random.Random(4)
    served = []
    for _ in range(5):
        stack = _claim(factory, user, rng)
        served.append((_project(factory, stack.vessel_id), stack.probability))
        run_transaction(factory, lambda s: submit_review(s, user_id=user, vessel_id=stack.vessel_id,
                                                         answer="flowing"))
    assert [project for project, _ in served] == ["new", "new", "new", "known", "known"]
    assert not all(0.25 < p < 0.75 for _, p in served[:3])  # drawn at random, not from the band
    with factory() as session:
        marked = session.execute(select(Stack.project_id, Review.gate).join(Stack, Stack.id == Review.vessel_id)
                                 .order_by(Review.id)).all()
    assert [tuple(row) for row in marked] == [("new", True)] * 3 + [("known", False)] * 2


def test_gate_claims_in_flight_count_towards_what_the_gate_needs(gated_queue):
    factory, user = gated_queue
    others = run_transaction(factory, lambda s: add_plain_users(s, ["bo", "cy", "di"]))
    rng = random.Random(1)
    firsts = [_project(factory, _claim(factory, reviewer, rng).vessel_id) for reviewer in [user, *others]]
    assert firsts == ["new", "new", "new", "known"]
    with factory() as session:
        assert session.scalar(select(Claim.gate).where(Claim.user_id == others[-1])) is False
