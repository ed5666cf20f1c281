"""Final labels: humans where k reviews decide (skill-weighted), else the crowd's known answer, else the model under the policy, else none."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from db.export import ROUNDED_COLUMNS, write_export
from db.policy import save_policy
from db.queue import submit_review
from db.vessels import import_metadata
from tests.db.helpers import MetaRow, add_plain_users, add_scored_stacks
from triage_app.cli import main

PROBABILITIES = [0.05, 0.95, 0.5, 0.5, 0.5, 0.4, 0.9, 0.6]
REVIEWS = {2: ["stalled", "stalled", "flowing"], 3: ["stalled"], 5: ["bad_stack", "bad_stack", "flowing"],
           6: ["flowing", "flowing", "unsure", "flowing"], 7: ["stalled", "flowing", "stalled", "flowing"]}
VOTE = "vote"  # a 2-2 tie: the label the skill-weighted vote gives (human_p_stalled >= 0.5); "{p}": its P(stalled)
EXPECTED = {  # filename: (final_label, source, reason)
    "s000.mp4": (0, "model", "p=0.050 <= t_low=0.200"),
    "s001.mp4": (1, "model", "p=0.950 >= t_high=0.800"),
    "s002.mp4": (1, "human", "skill-weighted vote of 3 reviews (2 stalled, 1 flowing): P(stalled)={p}"),
    "s003.mp4": (None, "none", "model uncertain (p=0.500); 1 of 3 reviews"),
    "s004.mp4": (0, "crowd", "crowd label; model uncertain (p=0.500); no reviews"),
    # two bad-stack reports are short of k=3: they complete the count, the flowing answer labels it
    "s005.mp4": (0, "human", "1 review (flowing); 2 bad-stack reports"),
    "s006.mp4": (0, "human", "skill-weighted vote of 3 reviews (0 stalled, 3 flowing): P(stalled)={p}"),
    "s007.mp4": (VOTE, "human", "skill-weighted vote of 4 reviews (2 stalled, 2 flowing): P(stalled)={p}"),
    "x.mp4": (None, "none", "no prediction; no reviews"),
}


@pytest.fixture
def labelled(session_factory):
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, PROBABILITIES, labels={4: 0}, threshold=0.55)
        import_metadata(session, rows=[MetaRow("x.mp4", "p", 20)], source="meta.csv", split="test")
        users = add_plain_users(session, ["dan", "ann", "cat", "ben"])
        save_policy(session, model_run_id=run_id, t_low=0.2, t_high=0.8, reviews_required=3)
        for index, answers in REVIEWS.items():
            for user_id, answer in zip(users, answers):
                submit_review(session, user_id=user_id, vessel_id=index + 1, answer=answer)
    return session_factory


def _resolved(label: int | str | None, source: str, reason: str, p_stalled: float) -> tuple:
    """An EXPECTED row with the skill-weighted vote's label and P(stalled) filled in."""
    return (int(p_stalled >= 0.5) if label == VOTE else label), source, reason.format(p=f"{p_stalled:.3f}")


def test_every_row_says_which_source_decided_and_why(labelled, tmp_path) -> None:
    with labelled() as session:
        summary = write_export(session, path=tmp_path / "labels.csv")
        write_export(session, path=tmp_path / "labels.parquet")
    frame = pd.read_csv(tmp_path / "labels.csv", dtype={"final_label": "Int64"})
    rows = frame.set_index("filename")
    got = {row.filename: (None if pd.isna(row.final_label) else int(row.final_label), row.source, row.reason)
           for row in frame.itertuples()}
    assert got == {name: _resolved(label, source, reason, rows.loc[name, "human_p_stalled"])
                   for name, (label, source, reason) in EXPECTED.items()}
    assert rows.loc[["s002.mp4", "s006.mp4", "s007.mp4"], "human_p_stalled"].notna().all()
    assert summary.rows == 9 and summary.by_source == {"model": 2, "human": 4, "crowd": 1, "none": 2}
    assert summary.skill_weighted == 3
    row = rows.loc["s002.mp4"]
    assert (row.n_reviews, row.n_stalled, row.n_flowing, row.reviewers) == (3, 2, 1, "ann,cat,dan")
    assert row.agreement == pytest.approx(2 / 3) and (row.t_low, row.t_high, row.reviews_required) == (0.2, 0.8, 3)
    assert rows.loc["s006.mp4", "n_unsure"] == 1
    parquet = pd.read_parquet(tmp_path / "labels.parquet")
    assert parquet["filename"].tolist() == frame["filename"].tolist()
    assert parquet["source"].tolist() == frame["source"].tolist()
    assert parquet["final_label"].astype("Int64").equals(frame["final_label"])


def test_submission_cli_writes_the_competition_format(labelled, db_url: str, tmp_path, capsys) -> None:
    out = tmp_path / "submission.csv"
    code = main(["export", "--out", str(out), "--format", "submission", "--db", db_url])
    assert code == 1  # x.mp4 has neither a label nor a prediction
    printed = capsys.readouterr().out
    assert "left out of the submission: x.mp4" in printed
    assert "3 human labels from a skill-weighted vote of several reviews" in printed
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["filename", "stalled"]
    # final labels where decided; otherwise the run's own threshold (0.55): s003 0.5 -> 0, s007 0.6 -> 1
    assert dict(zip(submission.filename, submission.stalled)) == {
        "s000.mp4": 0, "s001.mp4": 1, "s002.mp4": 1, "s003.mp4": 0, "s004.mp4": 0, "s005.mp4": 0,
        "s006.mp4": 0, "s007.mp4": 1}


def test_every_number_is_written_with_at_most_six_decimals_in_csv_and_parquet(session_factory, tmp_path) -> None:
    float32 = float(np.float32(0.3))  # 0.30000001192092896 as a float64
    with session_factory.begin() as session:
        run_id = add_scored_stacks(session, [float32, 2 / 3, 0.123456789])
        import_metadata(session, rows=[MetaRow("s000.mp4", "p", 20, float32)], source="meta.csv", split="test")
        save_policy(session, model_run_id=run_id, t_low=float32, t_high=0.7, reviews_required=2)
        ann, ben = add_plain_users(session, ["ann", "ben"])
        for user, answer in ((ann, "stalled"), (ben, "flowing")):
            submit_review(session, user_id=user, vessel_id=2, answer=answer)
        write_export(session, path=tmp_path / "labels.csv")
        write_export(session, path=tmp_path / "labels.parquet")
    columns = list(ROUNDED_COLUMNS)
    text = pd.read_csv(tmp_path / "labels.csv", dtype=str, keep_default_na=False)[columns]
    written = {value for value in text.to_numpy().ravel() if value}
    assert written >= {"0.3", "0.666667", "0.123457", "0.5", "0.7"}  # probability, agreement, t_low, ...
    assert all(re.fullmatch(r"\d+(\.\d{1,6})?", value) for value in written), written
    parquet = pd.read_parquet(tmp_path / "labels.parquet")[columns]
    assert (parquet.dtypes == "float64").all()
    assert parquet.equals(parquet.round(6)) and parquet["human_p_stalled"].notna().any()
    assert parquet["probability"].tolist() == [0.3, 0.666667, 0.123457]


def test_without_a_policy_the_model_decides_nothing(session_factory, tmp_path) -> None:
    with session_factory.begin() as session:
        add_scored_stacks(session, [0.01, 0.99], labels={1: 1})
    with session_factory() as session:
        write_export(session, path=tmp_path / "labels.csv")
    frame = pd.read_csv(tmp_path / "labels.csv")
    assert frame["source"].tolist() == ["none", "crowd"]
    assert frame["reason"].tolist() == ["no active policy; no reviews", "crowd label; no active policy; no reviews"]


def test_bad_output_names_are_refused(sqlite_db_url: str, tmp_path, capsys) -> None:
    assert main(["export", "--out", str(tmp_path / "labels.txt"), "--db", sqlite_db_url]) == 1
    assert "must end in .csv or .parquet" in capsys.readouterr().out
