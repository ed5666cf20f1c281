"""Export precedence: a human review (k reached) > a known crowd answer > the model; provenance says which."""

from __future__ import annotations

import pandas as pd
import pytest

from db.export import write_export
from db.policy import active_policy, save_policy
from db.queue import submit_review
from db.vessels import import_labels, import_metadata
from tests.db.helpers import LabelRow, MetaRow, add_plain_users, add_scored_stacks


def _export(factory, tmp_path) -> pd.DataFrame:
    with factory() as session:
        write_export(session, path=tmp_path / "labels.csv")
    return pd.read_csv(tmp_path / "labels.csv", dtype={"final_label": "Int64"}).set_index("filename")


def test_a_known_crowd_answer_beats_a_confident_model_guess(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.01, 0.99, 0.01], labels={0: 1, 1: 0})
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8)
    frame = _export(session_factory, tmp_path)
    assert frame.loc["s000.mp4", ["final_label", "source", "reason"]].tolist() == [
        1, "crowd", "crowd label; p=0.010 <= t_low=0.200; no reviews"]
    assert frame.loc["s001.mp4", ["final_label", "source"]].tolist() == [0, "crowd"]
    assert frame.loc["s002.mp4", ["final_label", "source", "reason"]].tolist() == [0, "model", "p=0.010 <= t_low=0.200"]


def test_a_human_review_that_reached_k_beats_a_crowd_label_that_arrived_later(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5, 0.5])
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=2)
        ann, ben = add_plain_users(session, ["ann", "ben"])
        for user in (ann, ben):
            submit_review(session, user_id=user, vessel_id=1, answer="stalled")
        submit_review(session, user_id=ann, vessel_id=2, answer="stalled")
        import_labels(session, rows=[LabelRow("s000.mp4", 0), LabelRow("s001.mp4", 0)], source="late.csv")
    frame = _export(session_factory, tmp_path)
    assert frame.loc["s000.mp4", ["final_label", "source"]].tolist() == [1, "human"]
    assert frame.loc["s000.mp4", "reason"].startswith("skill-weighted vote of 2 reviews (2 stalled, 0 flowing)")
    assert frame.loc["s001.mp4", ["final_label", "source", "reason"]].tolist() == [
        0, "crowd", "crowd label; model uncertain (p=0.500); 1 of 2 reviews"]


def test_unsure_and_bad_stack_answers_are_named_not_called_no_reviews(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5, 0.5, 0.5])
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=2)
        ann, ben = add_plain_users(session, ["ann", "ben"])
        submit_review(session, user_id=ann, vessel_id=1, answer="unsure")
        submit_review(session, user_id=ann, vessel_id=2, answer="unsure")
        submit_review(session, user_id=ben, vessel_id=2, answer="flowing")
    frame = _export(session_factory, tmp_path)
    assert frame.loc["s000.mp4", "reason"] == "model uncertain (p=0.500); 1 unsure review"
    assert frame.loc["s001.mp4", "reason"] == "model uncertain (p=0.500); 1 of 2 reviews, 1 unsure review"
    assert frame.loc["s002.mp4", "reason"] == "model uncertain (p=0.500); no reviews"


def test_answers_to_known_answer_stacks_measure_reviewers_and_never_label_the_stack(session_factory,
                                                                                   tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5])
        import_metadata(session, rows=[MetaRow("k.mp4", "p", 20, 0.0, True)], source="train.csv", split="train")
        import_labels(session, rows=[LabelRow("k.mp4", 0)], source="labels.csv")
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8)
        ann, ben = add_plain_users(session, ["ann", "ben"])
        for user in (ann, ben):
            submit_review(session, user_id=user, vessel_id=2, answer="stalled")
    row = _export(session_factory, tmp_path).loc["k.mp4"]
    assert (row.final_label, row.source, row.n_reviews, row.n_known_answer_reviews) == (0, "crowd", 0, 2)
    assert row.reason == "crowd label; no prediction; no reviews; 2 known-answer reviews"


@pytest.mark.parametrize("sides", [(None, 0.8), (0.2, None), (None, None)])
def test_a_side_that_decides_nothing_is_stored_as_null_and_decides_nothing(session_factory, tmp_path,
                                                                            sides) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.0, 1.0])
        save_policy(session, model_run_id=run_id, t_low=sides[0], t_high=sides[1])
    with session_factory() as session:
        policy = active_policy(session)
        stored = (policy.t_low, policy.t_high)
    assert stored == sides
    expected = sides
    frame = _export(session_factory, tmp_path)
    assert frame.loc["s000.mp4", "source"] == ("model" if expected[0] is not None else "none")
    assert frame.loc["s001.mp4", "source"] == ("model" if expected[1] is not None else "none")
    assert frame["t_low"].isna().all() == (expected[0] is None)


def test_skill_weighted_labels_side_with_the_reviewer_whose_known_answers_were_right(session_factory,
                                                                                       tmp_path) -> None:
    known = [f"k{i:02d}.mp4" for i in range(20)]
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5])
        import_metadata(session, rows=[MetaRow(name, "p", 20, float(i % 2), True) for i, name in enumerate(known)],
                        source="train.csv", split="train")
        import_labels(session, rows=[LabelRow(name, i % 2) for i, name in enumerate(known)], source="labels.csv")
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=3)
        careful, careless, sloppy = add_plain_users(session, ["careful", "careless", "sloppy"])
        for i in range(len(known)):  # the careful reviewer is right; the others always say stalled
            submit_review(session, user_id=careful, vessel_id=2 + i, answer="stalled" if i % 2 else "flowing")
            for user in (careless, sloppy):
                submit_review(session, user_id=user, vessel_id=2 + i, answer="stalled")
        submit_review(session, user_id=careful, vessel_id=1, answer="flowing")
        for user in (careless, sloppy):
            submit_review(session, user_id=user, vessel_id=1, answer="stalled")
    row = _export(session_factory, tmp_path).loc["s000.mp4"]
    assert (row.final_label, row.source, row.n_stalled, row.n_flowing) == (0, "human", 2, 1)  # not the majority
    assert row.human_p_stalled < 0.5 and row.reviewers == "careful,careless,sloppy"
    assert row.reason == ("skill-weighted vote of 3 reviews (2 stalled, 1 flowing): "
                          f"P(stalled)={row.human_p_stalled:.3f}")
