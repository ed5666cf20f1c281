"""The Review page through the real entry script (AppTest): what is shown, and each answer's row."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.engine import make_engine
from db.models import Review, User, Vessel
from tests.fixtures.app_data import REVIEWER
from tests.triage_app.helpers import logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def _reviews(url: str) -> list[tuple[str, str, str, float | None]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(Vessel.filename, User.name, Review.answer, Review.seconds)
                                  .join(Vessel, Vessel.id == Review.vessel_id).join(User, User.id == Review.user_id)
                                  .order_by(Review.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def _shown_filename(at) -> str:
    return at.image[1].proto.imgs[0].caption.split(":")[0]


def test_review_page_shows_video_frames_context_and_hides_the_score():
    at = logged_in(*REVIEWER)
    assert len(at.get("video")) == 1
    video = at.get("video")[0].proto
    assert video.loop and video.autoplay and video.muted
    assert at.slider(key=at.slider[0].key).max == 24
    assert len(at.image) == 2 and "full frame" in at.image[1].proto.imgs[0].caption
    assert at.toggle(key="review_show_score").value is False
    assert not [m for m in at.metric if m.label.startswith("Model probability")]
    at.toggle(key="review_show_score").set_value(True).run()
    assert [m for m in at.metric if m.label.startswith("Model probability")]


def test_answer_buttons_have_keyboard_shortcuts():
    at = logged_in(*REVIEWER)
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key and b.key.startswith("review_")}
    assert shortcuts == {"review_stalled": "s", "review_flowing": "f", "review_unsure": "u", "review_bad_stack": "b"}


@pytest.mark.parametrize("answer", ["stalled", "flowing", "unsure", "bad_stack"])
def test_each_answer_writes_its_row_and_moves_on(answer, app_data):
    at = logged_in(*REVIEWER)
    first = _shown_filename(at)
    at.button(key=f"review_{answer}").click().run()
    assert not at.exception
    rows = _reviews(app_data.settings.db_url)
    assert [(f, u, a) for f, u, a, _ in rows] == [(first, REVIEWER[0], answer)]
    assert rows[0][3] is not None and rows[0][3] >= 0
    assert _shown_filename(at) != first
    assert at.metric[0].value == "1"


def test_queue_runs_dry_with_a_thank_you(app_data):
    at = logged_in(*REVIEWER)
    seen = set()
    for _ in range(len(app_data.queue_filenames)):
        seen.add(_shown_filename(at))
        at.button(key="review_flowing").click().run()
    assert seen == set(app_data.queue_filenames)
    assert [s.value for s in at.success] == ["Nothing left for you to review. Thank you!"]
    assert len(_reviews(app_data.settings.db_url)) == len(app_data.queue_filenames)
