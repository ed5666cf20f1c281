"""Second looks at likely crowd errors: served to admins first, once; the answer becomes the
reference label, the final label and the training label, with its provenance in the export."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select, update

from db.engine import run_transaction
from db.export import final_labels
from db.known_answers import set_known_answer_rate
from db.models import Review, Stack
from db.predictions import predictions_frame, replace_predictions, upsert_model_run
from db.queue import claim_next, submit_review
from db.second_look import looked_at, request_second_looks, second_looks_frame, waiting
from db.training_labels import reviewed_labels
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users

# crowd-labelled training stacks: (filename, crowd label, crowd score, tier 1, out-of-fold score)
LABELLED = [("a.mp4", 1, 0.45, False, 0.05),   # a narrow "stalled" the model doubts
            ("b.mp4", 0, 0.40, False, 0.90),   # a narrow "flowing" the model doubts
            ("c.mp4", 1, 1.00, True, 0.95),    # a trusted known answer
            ("d.mp4", 0, 0.00, True, 0.02)]
NEW = ["n1.mp4", "n2.mp4"]                     # unlabelled, routed (p = 0.5 without a policy)


@pytest.fixture
def stacks(session_factory):
    """The stacks above scored by one run, an admin and a reviewer: (run id, admin id, reviewer id)."""
    with session_factory.begin() as session:
        import_metadata(session, rows=[MetaRow(name, "p", 20, score, tier1) for name, _, score, tier1, _ in LABELLED],
                        source="train.csv", split="train")
        import_metadata(session, rows=[MetaRow(name, "p", 20) for name in NEW], source="test.csv", split="test")
        import_labels(session, rows=[LabelRow(name, label) for name, label, *_ in LABELLED], source="labels.csv")
        session.execute(update(Stack).values(status="ok"))
        run = upsert_model_run(session, name="run", threshold=0.5)
        frame = pd.DataFrame({"filename": [row[0] for row in LABELLED] + NEW,
                              "probability": [row[4] for row in LABELLED] + [0.5] * len(NEW), "spread": 0.0,
                              "role": ["out_of_fold"] * len(LABELLED) + ["new"] * len(NEW), "fold": 0})
        assert replace_predictions(session, model_run_id=run.id, predictions=frame).ok
        admin, = add_plain_users(session, ["ada"], role="admin")
        reviewer, = add_plain_users(session, ["rex"])
        set_known_answer_rate(session, rate=0.0, actor="ada")  # c and d are known answers: no calibration draws
        return run.id, admin, reviewer


def request(factory, run_id: int, names: list[str]) -> int:
    flagged = pd.DataFrame({"filename": names, "reason": [f"doubted {name}" for name in names]})
    with factory.begin() as session:
        return request_second_looks(session, stacks=flagged, model_run_id=run_id, actor="ada")


def answer_next(factory, user_id: int, answer: str) -> str | None:
    """Claim the user's next stack and answer it; the filename served (None: nothing)."""
    def work(session):
        stack = claim_next(session, user_id=user_id)
        if stack is not None:
            submit_review(session, user_id=user_id, vessel_id=stack.vessel_id, answer=answer)
        return None if stack is None else stack.filename

    return run_transaction(factory, work, write=True)


def export(factory) -> pd.DataFrame:
    with factory() as session:
        return pd.concat(list(final_labels(session))).set_index("filename")


def test_admins_are_served_the_second_looks_first_and_each_once(session_factory, stacks) -> None:
    run_id, admin, reviewer = stacks
    assert request(session_factory, run_id, ["b.mp4", "a.mp4", "nope.mp4"]) == 2  # unknown names ignored
    assert request(session_factory, run_id, ["a.mp4"]) == 0                       # queued once
    assert answer_next(session_factory, reviewer, "flowing") in NEW                 # reviewers: regular work
    assert answer_next(session_factory, admin, "flowing") == "b.mp4"                # in the order listed
    assert answer_next(session_factory, admin, "flowing") == "a.mp4"
    assert answer_next(session_factory, admin, "flowing") in NEW                    # then regular work
    with session_factory() as session:
        assert waiting(session) == 0
        assert looked_at(session) == {"a.mp4", "b.mp4"}
        marked = dict(session.execute(select(Stack.filename, Review.reviews_required)
                                      .join(Stack, Stack.id == Review.vessel_id)
                                      .where(Review.second_look.is_(True), Review.known_answer.is_(False))).all())
    assert marked == {"a.mp4": 1, "b.mp4": 1}


def test_a_trusted_known_answer_looked_at_again_is_a_second_look_not_a_calibration(session_factory, stacks) -> None:
    run_id, admin, _ = stacks
    request(session_factory, run_id, ["c.mp4"])
    assert answer_next(session_factory, admin, "flowing") == "c.mp4"
    with session_factory() as session:
        review = session.execute(select(Review.second_look, Review.known_answer)).one()
    assert tuple(review) == (True, False)


def test_the_answer_replaces_the_crowds_as_reference_final_and_training_label(session_factory, stacks) -> None:
    run_id, admin, _ = stacks
    request(session_factory, run_id, ["a.mp4", "b.mp4", "d.mp4"])
    assert [answer_next(session_factory, admin, answer) for answer in ("flowing", "flowing", "unsure")] \
        == ["a.mp4", "b.mp4", "d.mp4"]
    with session_factory() as session:
        frame = predictions_frame(session, model_run_id=run_id).set_index("filename")
        looks = second_looks_frame(session).set_index("filename")
        trained = reviewed_labels(session).set_index("filename")["label"].to_dict()
    assert frame.loc[["a.mp4", "b.mp4", "c.mp4", "d.mp4"], "label"].tolist() == [0, 0, 1, 0]
    assert frame.loc[["a.mp4", "b.mp4"], "crowd_label"].tolist() == [1, 0]
    assert looks["status"].to_dict() == {"a.mp4": "corrected", "b.mp4": "confirmed", "d.mp4": "unsure"}
    assert looks.loc["a.mp4", "answered_by"] == "ada" and looks.loc["a.mp4", "reason"] == "doubted a.mp4"
    assert trained == {"a.mp4": 0, "b.mp4": 0}
    labels = export(session_factory)
    assert labels.loc["a.mp4", ["final_label", "source"]].tolist() == [0, "human"]
    assert labels.loc["a.mp4", "reason"] == ("second look: 1 review (flowing); crowd said stalled "
                                             "(45% voted stalled), corrected")
    assert labels.loc["b.mp4", "reason"] == ("second look: 1 review (flowing); crowd said flowing "
                                             "(40% voted stalled), confirmed")
    assert labels.loc["d.mp4", ["final_label", "source"]].tolist() == [0, "crowd"]  # unsure keeps the crowd's


def test_a_later_decisive_answer_by_the_same_admin_edits_the_second_look(session_factory, stacks) -> None:
    run_id, admin, _ = stacks
    request(session_factory, run_id, ["a.mp4"])
    assert answer_next(session_factory, admin, "unsure") == "a.mp4"
    with session_factory.begin() as session:
        vessel = session.scalar(select(Stack.id).where(Stack.filename == "a.mp4"))
        submit_review(session, user_id=admin, vessel_id=vessel, answer="flowing")
    with session_factory() as session:
        frame = predictions_frame(session, model_run_id=run_id).set_index("filename")
    assert frame.loc["a.mp4", "label"] == 0
