"""``stalltriage crowd-errors``: the run's out-of-fold scores against the crowd's answers, from the database."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select, update

from db.engine import make_engine, make_session_factory
from db.models import CrowdAnswer, Stack, User
from db.predictions import predictions_frame
from db.queue import claim_next, submit_review
from triage_app.cli import main


def _set_answers(db_url: str, answers: dict[str, tuple[int, float]]) -> None:
    """Give stacks the crowd answer ``(label, crowd_score)``."""
    engine = make_engine(db_url)
    with make_session_factory(engine).begin() as session:
        for filename, (label, score) in answers.items():
            vessel = select(Stack.id).where(Stack.filename == filename).scalar_subquery()
            session.execute(update(CrowdAnswer).where(CrowdAnswer.vessel_id == vessel)
                            .values(label=label, crowd_score=score))
    engine.dispose()


def _scores(app_data) -> pd.DataFrame:
    engine = make_engine(app_data.settings.db_url)
    with make_session_factory(engine)() as session:
        frame = predictions_frame(session, model_run_id=app_data.model_run_id)
    engine.dispose()
    return frame[frame["label"].notna()].sort_values("probability")


def test_lists_narrow_answers_the_model_contradicts(app_data, tmp_path, capsys):
    labelled = _scores(app_data)
    flowing_looking, stalled_looking = labelled["filename"].iloc[:2], labelled["filename"].iloc[-2:]
    _set_answers(app_data.settings.db_url, {
        flowing_looking.iloc[0]: (1, 0.55), stalled_looking.iloc[-1]: (0, 0.4),  # narrow votes: flagged
        flowing_looking.iloc[1]: (1, 1.0), stalled_looking.iloc[-2]: (0, 0.0)})  # unanimous: left alone
    out = tmp_path / "reports" / "crowd_errors.csv"
    assert main(["crowd-errors", "--out", str(out), "--db", app_data.settings.db_url]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"2 likely crowd errors among {len(labelled)} labelled stacks scored out of fold "
                              f"by run {app_data.model_run_id} (cleanlab predicted_neq_given; crowd margin <= 0.6)")
    flagged = pd.read_csv(out)
    assert set(flagged["filename"]) == {flowing_looking.iloc[0], stalled_looking.iloc[-1]}
    assert {"crowd_score", "tier1", "probability", "reason"} <= set(flagged.columns)
    assert "crowd said stalled (55% voted stalled); tier 1" in printed

    assert main(["crowd-errors", "--max-margin", "1", "--out", str(out), "--db", app_data.settings.db_url]) == 0
    assert {*flowing_looking, *stalled_looking} <= set(pd.read_csv(out)["filename"])  # any vote may be doubted


def test_says_what_is_missing(app_data, capsys):
    assert main(["crowd-errors", "--model-run", "999", "--db", app_data.settings.db_url]) == 1
    assert "error: no model run with id 999" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["crowd-errors", "--max-margin", "2", "--db", app_data.settings.db_url])
    assert exit_.value.code == 2 and "--max-margin: must be a number from 0 to 1" in capsys.readouterr().err


def test_second_look_queues_the_flagged_once_and_a_looked_at_stack_leaves_the_list(app_data, capsys):
    labelled = _scores(app_data)
    doubted = [labelled["filename"].iloc[0], labelled["filename"].iloc[-1]]
    _set_answers(app_data.settings.db_url, {doubted[0]: (1, 0.55), doubted[1]: (0, 0.4)})
    url = app_data.settings.db_url
    assert main(["crowd-errors", "--second-look", "--db", url]) == 0
    assert "queued 2 stacks for an admin's second look (0 were queued before)" in capsys.readouterr().out
    assert main(["crowd-errors", "--second-look", "--db", url]) == 0
    assert "queued 0 stacks for an admin's second look (2 were queued before)" in capsys.readouterr().out

    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        admin = session.scalar(select(User.id).where(User.role == "admin"))
        served = claim_next(session, user_id=admin)
        confirmed = "stalled" if served.filename == doubted[0] else "flowing"  # the crowd was right after all
        submit_review(session, user_id=admin, vessel_id=served.vessel_id, answer=confirmed)
    engine.dispose()
    assert served.filename in doubted
    assert main(["crowd-errors", "--db", url]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"1 likely crowd errors among {len(labelled)} labelled stacks") \
        and "; 1 already had a second look)" in printed.splitlines()[0]
