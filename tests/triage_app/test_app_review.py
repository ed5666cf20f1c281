"""The Review page through the real entry script (AppTest): what is shown, and each answer's row."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from core.mp4 import iter_frames

from db.engine import make_engine
from db.models import Review, User, Stack
from testkit.app_data import REVIEWER
from tests.triage_app.helpers import logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def _reviews(url: str) -> list[tuple[str, str, str, float | None]]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(select(Stack.filename, User.name, Review.answer, Review.seconds)
                                  .join(Stack, Stack.id == Review.vessel_id).join(User, User.id == Review.user_id)
                                  .order_by(Review.id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def _shown_filename(at) -> str:
    return at.image[0].proto.imgs[0].caption.split(":")[0]


def _viewer_data(at) -> dict:
    proto = [e for e in at.get("bidi_component") if e.key == "review_viewer"][0].proto
    return json.loads(proto.json if proto.WhichOneof("data") == "json" else proto.mixed.json)


def _decoded(url: str) -> bytes:
    head, payload = url.split(",", 1)
    assert head.endswith(";base64")
    return base64.b64decode(payload)


def _orange(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 200) & (rgb[..., 1] > 90) & (rgb[..., 1] < 190) & (rgb[..., 2] < 80)


def test_review_page_shows_one_viewer_with_the_outline_and_hides_the_score(tmp_path):
    at = logged_in(*REVIEWER)
    assert not at.get("video") and not at.slider  # one viewer, no separate video and slice slider
    data = _viewer_data(at)
    assert data["depth"] == 24 and data["view"] == "plain" and data["model"] is None
    video = tmp_path / "roi.mp4"
    video.write_bytes(_decoded(data["video"]))
    frames = list(iter_frames(video))
    assert len(frames) == 24
    outline = np.asarray(Image.open(io.BytesIO(_decoded(data["outline"]))))
    assert outline.shape[:2] == frames[0].shape[:2] and outline.shape[2] == 4
    assert _orange(outline[..., :3])[outline[..., 3] == 255].all() and (outline[..., 3] == 255).any()
    assert len(at.image) == 1 and "full frame" in at.image[0].proto.imgs[0].caption
    assert at.button(key="review_model_view_button").disabled  # the fixture's run folder has no members
    assert at.toggle(key="review_show_score").value is False
    assert not [m for m in at.metric if m.label.startswith("Model probability")]
    at.toggle(key="review_show_score").set_value(True).run()
    assert [m for m in at.metric if m.label.startswith("Model probability")]
    assert any(c.value.startswith("scored by run ") and "unknown" not in c.value for c in at.caption)


def test_the_model_view_is_off_until_asked_for(app_data, tmp_path):
    from db.models import ModelRun
    from testkit.run_dir import make_run_dir

    engine = make_engine(app_data.settings.db_url)
    with engine.begin() as connection:
        connection.execute(update(ModelRun).values(checkpoint_path=str(make_run_dir(tmp_path / "run"))))
    engine.dispose()
    at = logged_in(*REVIEWER)
    assert _viewer_data(at)["model"] is None
    assert at.button(key="review_model_view_button").proto.shortcut == "m"
    at.button(key="review_model_view_button").click().run()
    assert not at.exception, at.exception
    data = _viewer_data(at)
    assert data["view"] == "model" and data["model"].startswith("data:video/mp4;base64,")
    video = tmp_path / "model.mp4"
    video.write_bytes(_decoded(data["model"]))
    frames = np.stack(list(iter_frames(video)))
    assert len(frames) == 24
    colour = np.abs(frames[..., 0].astype(int) - frames[..., 2].astype(int))
    assert (colour > 60).any()  # the heat map (the plain video is grey)
    at.button(key="review_model_view_button").click().run()
    assert _viewer_data(at)["model"] is None
    at.button(key="review_model_view_button").click().run()
    at.button(key="review_flowing").click().run()
    assert _viewer_data(at)["model"] is None  # the next stack starts without it


def test_answer_buttons_have_keyboard_shortcuts():
    at = logged_in(*REVIEWER)
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key and b.key.startswith("review_")}
    assert shortcuts == {"review_stalled": "s", "review_flowing": "f", "review_unsure": "u", "review_bad_stack": "b",
                         "review_model_view_button": "m"}


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
    left = 20 if answer == "unsure" else 19  # counted at once, not one answer late ("unsure" needs another look)
    assert any(c.value.startswith(f"{left} of 20 routed stacks still need reviews") for c in at.caption)


def test_queue_runs_dry_with_a_thank_you(app_data):
    at = logged_in(*REVIEWER)
    seen = set()
    for _ in range(len(app_data.queue_filenames)):
        seen.add(_shown_filename(at))
        at.button(key="review_flowing").click().run()
    assert seen == set(app_data.queue_filenames)
    assert [s.value for s in at.success] == ["Nothing left for you to review. Thank you!"]
    assert len(_reviews(app_data.settings.db_url)) == len(app_data.queue_filenames)


def test_the_score_is_hidden_again_for_the_next_stack():
    at = logged_in(*REVIEWER)
    at.toggle(key="review_show_score").set_value(True).run()
    assert [m for m in at.metric if m.label.startswith("Model probability")]
    at.button(key="review_flowing").click().run()
    assert not at.exception, at.exception
    assert at.toggle(key="review_show_score").value is False
    assert not [m for m in at.metric if m.label.startswith("Model probability")]


def test_the_answer_buttons_all_look_alike():
    at = logged_in(*REVIEWER)
    kinds = {b.key: b.proto.type for b in at.button if b.key and b.key.startswith("review_") and b.key != "review_model_view_button"}
    assert len(kinds) == 4 and set(kinds.values()) == {"secondary"}


def test_the_session_counter_counts_this_sessions_answers_from_the_database():
    at = logged_in(*REVIEWER)
    counter = lambda: next(m.value for m in at.metric if m.label == "Reviewed this session")  # noqa: E731
    assert counter() == "0"
    at.button(key="review_flowing").click().run()
    at.button(key="review_stalled").click().run()
    assert counter() == "2"
