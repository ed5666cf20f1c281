"""The Crowd errors page through the real entry script (AppTest): the flagged list, queuing it for a
second look, the admin served those stacks first on the Review page, and what the answers did."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from db.models import CrowdAnswer, Stack
from db.predictions import get_model_run, predictions_frame
from testkit.app_data import ADMIN, REVIEWER
from tests.triage_app.helpers import PAGES, Viewer, logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


@pytest.fixture
def doubted(sessions) -> dict[int, str]:
    """Every crowd vote made a tie (open to doubt); the labelled stacks the out-of-fold score then
    contradicts, by vessel id: what the page must flag."""
    with sessions.begin() as session:
        session.execute(update(CrowdAnswer).values(crowd_score=0.5))
        frame = predictions_frame(session, model_run_id=get_model_run(session).id)
        ids = dict(session.execute(select(Stack.filename, Stack.id)).all())
    labelled = frame[frame["label"].notna()]
    against = labelled[(labelled["probability"] >= 0.5) != (labelled["label"] == 1)]
    assert 0 < len(against) < len(labelled)
    return {ids[name]: name for name in against["filename"]}


def _open(user) -> object:
    at = logged_in(*user)
    at.switch_page(str(PAGES / "crowd_errors.py")).run()
    assert not at.exception, at.exception
    return at


def test_the_page_lists_the_doubted_answers_and_queues_them_for_an_admins_second_look(doubted):
    at = _open(ADMIN)
    assert f"**{len(doubted)}** likely crowd errors among 200 labelled stacks" in at.markdown[1].value
    assert set(at.dataframe[0].value["filename"]) == set(doubted.values())
    at.button(key="crowd_errors_queue").click().run()
    assert at.success[0].value.startswith(f"Queued {len(doubted)} stacks")
    assert set(at.dataframe[-1].value["status"]) == {"waiting"}

    reviewer = Viewer(logged_in(*REVIEWER))  # reviewers keep their regular work
    assert not {item["id"] for item in reviewer.data()["items"]} & set(doubted)
    admin = Viewer(logged_in(*ADMIN))  # first the two stacks claimed when the admin logged in above
    served = [admin.answer(answer)["id"] for answer in ("flowing", "flowing", "flowing", "stalled")]
    assert not set(served[:2]) & set(doubted)
    first = served[2:]
    assert set(first) <= set(doubted)

    at = _open(ADMIN)
    assert f"**{len(doubted) - 2}** likely crowd errors" in at.markdown[1].value  # looked-at stacks leave the list
    looks = at.dataframe[-1].value.set_index("filename")
    answered = looks.loc[[doubted[vessel] for vessel in first]]
    assert answered["answer"].tolist() == ["flowing", "stalled"] and set(answered["answered_by"]) == {ADMIN[0]}
    assert set(answered["status"]) <= {"confirmed", "corrected"}

