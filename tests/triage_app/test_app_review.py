"""The Review page through the real entry script (AppTest): what the viewer is given (the stack
shown and the next one), and what becomes of the answers it sends back (AppTest runs no JavaScript:
``Viewer`` below sends answers the way the viewer's script does, through its ``answers`` state)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select, update

from core.video.mp4 import iter_frames

from db.engine import make_engine
from db.models import Review, User, Stack
from testkit.app_data import REVIEWER
from tests.triage_app.helpers import Viewer, logged_in, use_app_data


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


def _decoded(url: str) -> bytes:
    head, payload = url.split(",", 1)
    assert head.endswith(";base64")
    return base64.b64decode(payload)


def _orange(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 200) & (rgb[..., 1] > 90) & (rgb[..., 1] < 190) & (rgb[..., 2] < 80)


def _score_shown(viewer: Viewer) -> bool:
    return viewer.data()["score"] is not None


def test_review_page_sends_the_stack_and_the_next_with_outlines_and_hides_the_score(tmp_path):
    at = logged_in(*REVIEWER)
    assert not at.get("video") and not at.slider and not at.image  # one viewer, no separate video or image
    viewer = Viewer(at)
    data = viewer.data()
    assert len(data["items"]) == 2 and data["items"][0]["id"] != data["items"][1]["id"]
    assert data["model"] is None and data["score"] is None and data["acknowledged"] == []
    for item in data["items"]:  # the next one is complete too: the browser loads it ahead
        assert item["depth"] == 24 and item["error"] is None and item["note"] == ""
        video = tmp_path / f"{item['id']}.mp4"
        video.write_bytes(_decoded(item["video"]))
        frames = list(iter_frames(video))
        assert len(frames) == 24
        outline = np.asarray(Image.open(io.BytesIO(_decoded(item["outline"]))))
        assert outline.shape[:2] == frames[0].shape[:2] and outline.shape[2] == 4
        assert _orange(outline[..., :3])[outline[..., 3] == 255].all() and (outline[..., 3] == 255).any()
        context = np.asarray(Image.open(io.BytesIO(_decoded(item["context"]))))
        assert context.shape == (128, 128, 3)
    assert at.button(key="review_model_view_button").disabled  # the fixture's run folder has no members
    assert at.toggle(key="review_show_score").value is False
    at.toggle(key="review_show_score").set_value(True).run()
    score = viewer.data()["score"]
    assert score["id"] == data["items"][0]["id"]  # shown only while that stack is on screen
    assert score["text"].startswith("Model probability (stalled): ") and "scored by run " in score["text"]
    assert "unknown" not in score["text"]


def test_the_model_view_is_off_until_asked_for(app_data, tmp_path):
    from db.models import ModelRun
    from testkit.run_dir import make_run_dir

    engine = make_engine(app_data.settings.db_url)
    with engine.begin() as connection:
        connection.execute(update(ModelRun).values(checkpoint_path=str(make_run_dir(tmp_path / "run"))))
    engine.dispose()
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    assert viewer.data()["model"] is None
    assert at.button(key="review_model_view_button").proto.shortcut == "m"
    at.button(key="review_model_view_button").click().run()
    assert not at.exception, at.exception
    model = viewer.data()["model"]
    assert model["id"] == viewer.shown()["id"] and model["video"].startswith("data:video/mp4;base64,")
    video = tmp_path / "model.mp4"
    video.write_bytes(_decoded(model["video"]))
    frames = np.stack(list(iter_frames(video)))
    assert len(frames) == 24
    colour = np.abs(frames[..., 0].astype(int) - frames[..., 2].astype(int))
    assert (colour > 60).any()  # the heat map (the plain video is grey)
    at.button(key="review_model_view_button").click().run()
    assert viewer.data()["model"] is None
    at.button(key="review_model_view_button").click().run()
    viewer.answer("flowing")
    assert viewer.data()["model"] is None  # the next stack starts without it


@pytest.mark.parametrize("answer", ["stalled", "flowing", "unsure", "bad_stack"])
def test_each_answer_writes_its_row_and_the_preloaded_next_moves_up(answer, app_data):
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    first, following = viewer.data()["items"]
    viewer.answer(answer)
    rows = _reviews(app_data.settings.db_url)
    assert rows == [(first["name"], REVIEWER[0], answer, 1.5)]  # the seconds the viewer measured
    assert viewer.data()["acknowledged"] == [first["id"]] and viewer.pending == []
    items = viewer.data()["items"]
    assert items[0]["id"] == following["id"] and first["id"] not in {i["id"] for i in items}
    assert at.metric[0].value == "1"
    left = 20 if answer == "unsure" else 19  # counted at once, not one answer late ("unsure" needs another look)
    assert any(c.value.startswith(f"{left} of 20 routed stacks still need reviews") for c in at.caption)


def test_answers_faster_than_the_page_are_each_stored_once(app_data):
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    first = viewer.answer("stalled", run=False)  # two keys before the page ran again
    second = viewer.answer("flowing", run=False)
    assert second["id"] != first["id"]
    viewer.send()
    viewer.pending = [{"id": first["id"], "answer": "stalled", "seconds": 1.5}]  # a resend (its acknowledgement lost)
    viewer.send()
    assert _reviews(app_data.settings.db_url) == [(first["name"], REVIEWER[0], "stalled", 1.5),
                                                  (second["name"], REVIEWER[0], "flowing", 1.5)]
    assert viewer.pending == [] and at.metric[0].value == "2"
    assert not {first["id"], second["id"]} & {i["id"] for i in viewer.data()["items"]}


def test_a_failed_write_is_kept_and_stored_when_sent_again(app_data, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from db import queue

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003 - the signature of db.queue.submit_review
        raise OperationalError("INSERT INTO review", {}, Exception("server closed the connection"))

    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    first = viewer.shown()
    with monkeypatch.context() as patch:
        patch.setattr(queue, "submit_review", broken)
        viewer.answer("stalled")
    assert _reviews(app_data.settings.db_url) == []
    assert viewer.pending == [{"id": first["id"], "answer": "stalled", "seconds": 1.5}]  # not acknowledged
    data = viewer.data()
    assert data["retry"] and first["id"] not in {i["id"] for i in data["items"]}  # kept, not shown again
    assert len(data["items"]) == 2
    assert [w.value for w in at.warning] == [
        "An answer is not stored yet (server closed the connection); this page keeps it and sends it again in a "
        "few seconds. Keep the page open."]
    viewer.send()  # the viewer's retry
    assert _reviews(app_data.settings.db_url) == [(first["name"], REVIEWER[0], "stalled", 1.5)]
    assert viewer.pending == [] and not viewer.data()["retry"] and not at.warning


def test_an_answer_to_a_stack_not_offered_is_refused_with_a_message(app_data):
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    offered = {item["id"] for item in viewer.data()["items"]}
    stranger = next(i for i in range(1, 1000) if i not in offered)
    viewer.pending = [{"id": stranger, "answer": "stalled", "seconds": 1.0}]
    viewer.send()
    assert _reviews(app_data.settings.db_url) == [] and viewer.pending == []
    assert [e.value for e in at.error] == ["An answer was not stored: this stack was not offered to you; "
                                           "answer not stored."]


def test_queue_runs_dry_with_a_thank_you(app_data):
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    seen = set()
    for _ in range(len(app_data.queue_filenames)):
        seen.add(viewer.answer("flowing")["name"])
    assert seen == set(app_data.queue_filenames)
    assert [s.value for s in at.success] == ["Nothing left for you to review. Thank you!"]
    assert len(_reviews(app_data.settings.db_url)) == len(app_data.queue_filenames)


def test_the_score_is_hidden_again_for_the_next_stack():
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    at.toggle(key="review_show_score").set_value(True).run()
    assert _score_shown(viewer)
    viewer.answer("flowing")
    assert at.toggle(key="review_show_score").value is False
    assert not _score_shown(viewer)


def test_the_session_counter_counts_this_sessions_answers_from_the_database():
    at = logged_in(*REVIEWER)
    viewer = Viewer(at)
    counter = lambda: next(m.value for m in at.metric if m.label == "Reviewed this session")  # noqa: E731
    assert counter() == "0"
    viewer.answer("flowing")
    viewer.answer("stalled")
    assert counter() == "2"
