"""Export precedence: a human review (k reached) > a known crowd answer > the model; provenance says which.

Who labels each stack under each kind of policy is ``tests/db/test_band_rule.py``'s case table, shared
with the queue and the tuner; these tests hold the export's own wording and bookkeeping.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import update

from db.export import write_export
from db.models import Review
from db.policy import save_policy
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


UNDECIDED = "model uncertain (p=0.500)"
BAD_STACK_RULE = [  # (k in force when reviewed, crowd label, answers) -> (final_label, source, reason)
    ((1, 0, ["bad_stack"]), (0, "crowd", f"crowd label; {UNDECIDED}; 1 bad-stack report")),
    ((2, 1, ["bad_stack", "bad_stack"]), (1, "crowd", f"crowd label; {UNDECIDED}; 2 bad-stack reports")),
    ((2, 0, ["stalled", "bad_stack"]), (0, "crowd", f"crowd label; {UNDECIDED}; 1 of 2 reviews, 1 bad-stack report")),
    ((1, 0, ["stalled"]), (1, "human", "1 review (stalled)")),
    ((2, None, ["bad_stack", "stalled"]), (1, "human", "1 review (stalled); 1 bad-stack report")),
    ((1, None, ["stalled", "bad_stack"]), (1, "human", "1 review (stalled); 1 bad-stack report")),
    ((3, None, ["bad_stack", "bad_stack", "flowing"]), (0, "human", "1 review (flowing); 2 bad-stack reports")),
    ((1, None, ["bad_stack"]), (None, "human", "1 bad-stack report (0 stalled, 0 flowing)")),
    ((2, None, ["bad_stack", "bad_stack", "stalled"]), (None, "human", "2 bad-stack reports (1 stalled, 0 flowing)")),
    ((2, None, ["bad_stack"]), (None, "none", f"{UNDECIDED}; 1 of 2 reviews, 1 bad-stack report")),
]


def test_bad_stack_answers_count_towards_k_but_never_beat_a_stall_or_a_crowd_label(session_factory,
                                                                                   tmp_path) -> None:
    names = [f"s{i:03d}.mp4" for i in range(len(BAD_STACK_RULE))]
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5] * len(BAD_STACK_RULE))
        users = add_plain_users(session, ["ann", "ben", "cat"])
        for k in sorted({k for (k, _, _), _ in BAD_STACK_RULE}):  # each stack reviewed under its own k
            save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=k)
            for vessel_id, ((case_k, _, answers), _) in enumerate(BAD_STACK_RULE, start=1):
                for user, answer in zip(users, answers if case_k == k else []):
                    submit_review(session, user_id=user, vessel_id=vessel_id, answer=answer)
        import_labels(session, rows=[LabelRow(name, crowd) for name, ((_, crowd, _), _) in zip(names, BAD_STACK_RULE)
                                     if crowd is not None], source="late.csv")  # after the reviews: not known-answer
    frame = _export(session_factory, tmp_path)
    got = [(None if pd.isna(label) else int(label), source, reason)
           for label, source, reason in frame.loc[names, ["final_label", "source", "reason"]].itertuples(index=False)]
    assert got == [expected for _, expected in BAD_STACK_RULE]
    assert frame.loc[names, "reviews_required"].tolist() == [k for (k, _, _), _ in BAD_STACK_RULE]


def test_a_stack_keeps_the_k_it_was_reviewed_under(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5, 0.5, 0.5, 0.5])
        ann, ben = add_plain_users(session, ["ann", "ben"])
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=1)
        for vessel_id in (1, 2, 3):
            submit_review(session, user_id=ann, vessel_id=vessel_id, answer="stalled")
        session.execute(update(Review).where(Review.vessel_id == 2).values(reviews_required=None))  # before k
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=3)
        submit_review(session, user_id=ann, vessel_id=3, answer="flowing")  # an edit records the k in force
    frame = _export(session_factory, tmp_path)
    assert frame[["final_label", "source", "reason", "reviews_required"]].values.tolist() == [
        [1, "human", "1 review (stalled)", 1],
        [1, "human", "1 review (stalled)", 1],
        [pd.NA, "none", "model uncertain (p=0.500); 1 of 3 reviews", 3],
        [pd.NA, "none", "model uncertain (p=0.500); no reviews", 3],
    ]


def test_the_most_recent_review_sets_the_k_and_known_answer_reviews_set_none(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [0.5])
        import_metadata(session, rows=[MetaRow("k.mp4", "p", 20, 0.0, True)], source="train.csv", split="train")
        import_labels(session, rows=[LabelRow("k.mp4", 0)], source="labels.csv")
        ann, ben = add_plain_users(session, ["ann", "ben"])
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=2)
        submit_review(session, user_id=ann, vessel_id=1, answer="stalled")
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=1)
        submit_review(session, user_id=ben, vessel_id=1, answer="stalled")
        submit_review(session, user_id=ann, vessel_id=2, answer="flowing")
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=3)
    frame = _export(session_factory, tmp_path)
    assert frame.loc["s000.mp4", "reviews_required"] == 1  # ben's review, the later one, was made under k=1
    assert frame.loc["s000.mp4", "source"] == "human"
    assert frame.loc["k.mp4", ["source", "reviews_required"]].tolist() == ["crowd", 3]  # the policy's k
