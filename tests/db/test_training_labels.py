"""Reviewed labels become training labels: the export's human label, never a known-answer review's."""

from __future__ import annotations

from sqlalchemy import update

from db.models import Stack
from db.policy import save_policy
from db.queue import submit_review
from db.training_labels import reviewed_labels, training_records, with_reviewed_labels
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users, add_scored_stacks
from training.dataset import select_samples
from training.pseudo import unlabelled_pool


def _setup(session) -> list[int]:  # noqa: ANN001 - a Session
    """Test stacks s000…s005 scored at 0.5 (routed), a tier-1 training stack k.mp4 labelled flowing; users a, b."""
    run_id = add_scored_stacks(session, [0.5] * 6)
    import_metadata(session, rows=[MetaRow("k.mp4", "p", 20, 0.0, True)], source="t.csv", split="train")
    import_labels(session, rows=[LabelRow("k.mp4", 0)], source="l.csv")
    session.execute(update(Stack).values(status="ok"))
    save_policy(session, model_run_id=run_id, t_low=0.1, t_high=0.9, reviews_required=1)
    return add_plain_users(session, ["a", "b"])


def _id(session, name: str) -> int:  # noqa: ANN001 - a Session
    return session.query(Stack.id).filter(Stack.filename == name).scalar()


def test_reviewed_labels_follow_the_export_rule(session_factory) -> None:
    with session_factory.begin() as session:
        a, b = _setup(session)
        submit_review(session, user_id=a, vessel_id=_id(session, "s000.mp4"), answer="stalled")
        submit_review(session, user_id=a, vessel_id=_id(session, "s001.mp4"), answer="flowing")
        submit_review(session, user_id=a, vessel_id=_id(session, "s002.mp4"), answer="unsure")
        submit_review(session, user_id=a, vessel_id=_id(session, "s003.mp4"), answer="bad_stack")
        submit_review(session, user_id=b, vessel_id=_id(session, "k.mp4"), answer="stalled")  # calibration
    with session_factory() as session:
        labels = reviewed_labels(session).set_index("filename")["label"].to_dict()
        assert labels == {"s000.mp4": 1, "s001.mp4": 0}
        records = training_records(session)
        by_name = {r.filename: r for r in records}
        assert by_name["k.mp4"].label == 0 and by_name["k.mp4"].source == "crowd"  # keeps its known label
        assert by_name["s000.mp4"].source == "review" and by_name["s000.mp4"].split == "test"
        assert "s002.mp4" not in by_name and "s004.mp4" not in by_name  # unreviewed test stacks do not train
        assert {r.filename for r in training_records(session, reviews=False)} == {"k.mp4"}


def test_reviewed_test_stacks_train_as_trusted_labels(session_factory) -> None:
    with session_factory.begin() as session:
        a, _ = _setup(session)
        submit_review(session, user_id=a, vessel_id=_id(session, "s000.mp4"), answer="stalled")
    with session_factory() as session:
        samples = select_samples(training_records(session))
    by_name = {s.filename: s for s in samples}
    assert set(by_name) == {"k.mp4", "s000.mp4"}
    assert by_name["s000.mp4"].label == 1 and by_name["s000.mp4"].target == 1.0
    assert by_name["s000.mp4"].tier1 and by_name["s000.mp4"].source == "review"


def test_a_review_replaces_a_crowd_score_target() -> None:
    import pandas as pd

    from core.labels.records import StackRecord

    record = StackRecord("x.mp4", "x", "p", "train", label=0, crowd_score=0.4, tier1=False)
    (relabelled,) = with_reviewed_labels([record], pd.DataFrame({"filename": ["x.mp4"], "label": [1]}))
    assert (relabelled.label, relabelled.crowd_score, relabelled.source) == (1, None, "review")
    sample, = select_samples([relabelled], soft_labels=True)
    assert sample.target == 1.0


def test_with_unlabelled_every_ingested_stack_comes_and_only_the_labelled_ones_train(session_factory) -> None:
    with session_factory.begin() as session:
        a, _ = _setup(session)
        submit_review(session, user_id=a, vessel_id=_id(session, "s000.mp4"), answer="stalled")
    with session_factory() as session:
        records = training_records(session, unlabelled=True)
        crowd_only = training_records(session, reviews=False, unlabelled=True)
    assert {r.filename for r in records} == {"k.mp4"} | {f"s00{i}.mp4" for i in range(6)}
    samples = select_samples(records)
    assert {s.filename for s in samples} == {"k.mp4", "s000.mp4"}  # the others only lend their images
    assert {r.filename for r in unlabelled_pool(records, samples)} == {f"s00{i}.mp4" for i in range(1, 6)}
    assert {r.filename: r.source for r in crowd_only}["s000.mp4"] == "crowd"
