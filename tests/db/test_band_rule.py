"""One case table for the band rule (``core.policy.band``), run against every rendering of it.

Each case is one stack under one policy: its probability, the crowd's label, the answers given
to it, and what must happen: the tuner's decision (numpy: ``core.policy.triage.decide`` and the rule's
own ``needs_review`` / ``sources`` on arrays), whether the review queue serves it and counts it
as routed (SQL: ``db.queue``), and who labels it in the export (pandas: ``db.export``). The
expectations are written out, not derived from the rule, so a rendering that drifts fails; the
database cases run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from core.policy.band import BandRule, Decision
from core.policy.triage import decide
from db.engine import run_transaction
from db.errors import DatabaseInputError
from db.export import final_labels, write_export
from db.policy import active_policy, save_policy
from db.queue import claim_next, queue_stats, submit_review
from db.vessels import import_labels
from tests.db.helpers import LabelRow, add_plain_users, add_scored_stacks

F, S, H = Decision.FLOWING, Decision.STALLED, Decision.HUMAN
EPS = 2.0 ** -10  # exact in float32 and float64: "just inside the band" means the same to every back end
REVIEWERS = ["ann", "ben"]


@dataclass(frozen=True)
class Case:
    """A stack and what the policy must do with it."""

    p: float
    crowd: int | None  # the crowd's label, None when unknown
    answers: tuple[str, ...]  # given by REVIEWERS in order
    decision: Decision  # the model's part alone (numpy)
    served: bool  # the review queue serves it
    source: str  # the export's source
    label: int | None  # the export's final label


def case(p: float, decision: Decision, served: bool, source: str, label: int | None = None, *,
         crowd: int | None = None, answers: tuple[str, ...] = ()) -> Case:
    return Case(p, crowd, answers, decision, served, source, label)


POLICIES = {  # name -> ((t_low, t_high, k) of the active policy, or None for no policy; cases)
    "both sides, k=2": ((0.25, 0.75, 2), [
        case(0.25, F, False, "model", 0),  # a tie at a threshold is the model's
        case(0.25 + EPS, H, True, "none"),
        case(0.75 - EPS, H, True, "none"),
        case(0.75, S, False, "model", 1),
        case(0.0, F, False, "model", 0),
        case(1.0, S, False, "model", 1),
        case(0.5, H, False, "crowd", 1, crowd=1),  # a known answer never needs a human
        case(0.1, F, False, "crowd", 1, crowd=1),  # ... and beats a confident model guess
        case(0.5, H, True, "none", answers=("stalled",)),  # 1 of k=2
        case(0.5, H, True, "none", answers=("stalled", "unsure")),  # unsure counts for nothing
        case(0.5, H, False, "human", 1, answers=("stalled", "stalled")),  # k reached
        case(0.9, S, False, "human", 0, answers=("flowing", "flowing")),  # k reviews beat the model
        case(0.5, H, False, "human", 0, crowd=1, answers=("flowing", "flowing")),  # ... and the crowd
        case(0.5, H, True, "none", answers=("bad_stack",)),  # bad-stack answers count towards k
        case(0.5, H, False, "human", None, answers=("bad_stack", "bad_stack")),  # a bad stack
        case(0.5, H, False, "human", 1, answers=("bad_stack", "stalled")),  # they never beat a stall
        case(0.5, H, False, "crowd", 0, crowd=0, answers=("bad_stack", "bad_stack")),  # nor a crowd label
    ]),
    "low side off": ((None, 0.75, 1), [
        case(0.0, H, True, "none"),
        case(0.25, H, True, "none"),
        case(0.75, S, False, "model", 1),
        case(0.0, H, False, "crowd", 0, crowd=0),
        case(0.5, H, False, "human", 1, answers=("stalled",)),
    ]),
    "high side off": ((0.25, None, 1), [
        case(1.0, H, True, "none"),
        case(0.25 + EPS, H, True, "none"),
        case(0.25, F, False, "model", 0),
        case(1.0, H, False, "human", None, answers=("bad_stack",)),
    ]),
    "both sides off": ((None, None, 1), [
        case(0.0, H, True, "none"),
        case(1.0, H, True, "none"),
        case(0.5, H, False, "crowd", 1, crowd=1),
    ]),
    "0 and 1 are thresholds like any other": ((0.0, 1.0, 1), [
        case(0.0, F, False, "model", 0),
        case(EPS, H, True, "none"),
        case(1.0 - EPS, H, True, "none"),
        case(1.0, S, False, "model", 1),
    ]),
    "no active policy": (None, [
        case(0.0, H, True, "none"),
        case(1.0, H, True, "none"),
        case(0.5, H, False, "human", 0, answers=("flowing",)),
    ]),
}


def _policy(name: str) -> tuple[float | None, float | None, int]:
    policy, _ = POLICIES[name]
    return policy if policy is not None else (None, None, 1)


@pytest.mark.parametrize("name", POLICIES)
def test_numpy_rendering(name: str) -> None:
    t_low, t_high, k = _policy(name)
    cases = POLICIES[name][1]
    p = np.array([c.p for c in cases])
    assert decide(p, t_low, t_high).tolist() == [c.decision for c in cases]
    count = np.array([[c.answers.count(answer) for answer in ("stalled", "flowing", "bad_stack")] for c in cases])
    crowd_known = np.array([c.crowd is not None for c in cases])
    band = BandRule.of(t_low, t_high, k)
    sources = band.sources(p, crowd_known=crowd_known, decisive=count[:, 0] + count[:, 1], bad_stack=count[:, 2],
                           voted=count[:, 0] != count[:, 1])
    got = np.select([sources.human | sources.bad_stack, sources.crowd, sources.model], ["human", "crowd", "model"],
                    "none")
    assert got.tolist() == [c.source for c in cases]
    assert band.needs_review(p, crowd_known=crowd_known, counted=sources.counted).tolist() == [c.served
                                                                                               for c in cases]


@pytest.mark.parametrize("name", POLICIES)
def test_sql_and_pandas_renderings(session_factory, name: str) -> None:
    policy, cases = POLICIES[name]
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [c.p for c in cases])
        users = add_plain_users(session, [*REVIEWERS, "zed"])
        if policy is not None:
            save_policy(session, model_run_id=run_id, t_low=policy[0], t_high=policy[1], reviews_required=policy[2])
        for vessel_id, c in enumerate(cases, start=1):
            for user, answer in zip(users, c.answers):
                submit_review(session, user_id=user, vessel_id=vessel_id, answer=answer)
        import_labels(session, rows=[LabelRow(f"s{i:03d}.mp4", c.crowd) for i, c in enumerate(cases)
                                     if c.crowd is not None], source="labels.csv")
    names = [f"s{i:03d}.mp4" for i in range(len(cases))]
    with session_factory() as session:
        stored = active_policy(session)
        assert (None if stored is None else (stored.t_low, stored.t_high, stored.reviews_required)) == policy
        assert queue_stats(session).routed_to_humans == sum(c.decision == H and c.crowd is None for c in cases)
        frame = pd.concat(final_labels(session)).set_index("filename").loc[names]
    claimed = []  # zed answered nothing: the queue serves them everything that needs review
    while (stack := run_transaction(session_factory, lambda s: claim_next(s, user_id=users[-1],
                                                                          order="stalled"))) is not None:
        claimed.append(stack)
    assert sorted(names[stack.vessel_id - 1] for stack in claimed) == [n for n, c in zip(names, cases) if c.served]
    assert frame["source"].tolist() == [c.source for c in cases]
    assert [None if pd.isna(label) else int(label) for label in frame["final_label"]] == [c.label for c in cases]


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
