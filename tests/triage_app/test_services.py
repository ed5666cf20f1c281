"""Services behind the app pages, on a real database, volume store and mp4 files (no Streamlit)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from core.video.mp4 import iter_frames
from db import queue
from db.models import Review
from testkit.app_data import ADMIN, REVIEWER, AppData
from triage_app import services
from triage_app.media import MediaCache, ReviewMedia, StackRef, display_scale, find_video, review_media


@pytest.fixture
def backend(app_data: AppData):
    backend = services.open_backend(app_data.settings)
    yield backend
    backend.close()


def _login(backend: services.Backend, who: tuple[str, str]) -> services.SessionUser:
    with backend.factory.begin() as session:
        user = services.login_attempt(session, name=who[0], password=who[1]).user
    assert user is not None
    return user


def test_login_checks_the_password(backend):
    with backend.factory.begin() as session:
        assert services.login_attempt(session, name=REVIEWER[0], password="wrong-password").user is None
        assert services.login_attempt(session, name="nobody", password=REVIEWER[1]).user is None
    user = _login(backend, ADMIN)
    assert user.is_admin and user.name == ADMIN[0]


def test_review_media_is_a_playable_upscaled_video_with_context(backend, app_data, tmp_path):
    user = _login(backend, REVIEWER)
    item = services.review_items(backend, user)[0]
    media = services.media_for(backend, item)
    path = tmp_path / "roi.mp4"
    path.write_bytes(media.video)
    frames = list(iter_frames(path))
    assert len(frames) == media.depth == 24
    scale = display_scale(36, 44)
    assert scale > 1 and frames[0].shape[:2] == (36 * scale, 44 * scale)
    assert media.video_size == (44 * scale, 36 * scale)
    assert media.outline is not None and media.outline.shape == (36 * scale, 44 * scale, 4)
    orange = (media.outline[..., 3] == 255) & (media.outline[..., 0] == 255)
    assert 0 < orange.mean() < 0.2  # a line around the vessel, not a filled area
    assert media.context is not None and media.context.shape == (128, 128, 3)
    assert tuple(media.context[46 - 2, 60]) == (0, 255, 255)  # the drawn ROI box (cyan)


def test_missing_original_video_is_explained(app_data, tmp_path):
    filename = app_data.queue_filenames[0]
    load = services.stack_loader(app_data.settings.store_path)
    media = review_media(StackRef(filename, Path(filename).stem, video_dirs=(str(tmp_path / "elsewhere"),)), load)
    assert media.context is None and "not found" in media.context_note and media.depth == 24


@pytest.mark.parametrize("name", ["../secret.mp4", "a/b.mp4", "", ".."])
def test_find_video_never_builds_paths_from_odd_names(tmp_path, name):
    (tmp_path / "secret.mp4").write_bytes(b"x")
    assert find_video(name, [tmp_path / "sub"]) is None


def test_review_items_claim_ahead_and_resume_after_reload(backend):
    user = _login(backend, REVIEWER)
    first = services.review_items(backend, user)
    assert len(first) == 2 and first[0].vessel_id != first[1].vessel_id
    again = services.review_items(backend, user)  # a reload: the same claims, no new ones
    assert [i.vessel_id for i in again] == [i.vessel_id for i in first]
    other = services.review_items(backend, _login(backend, ADMIN))
    assert not {i.vessel_id for i in other} & {i.vessel_id for i in first}


def test_submit_writes_the_review_and_the_prefetched_next_is_ready(backend):
    user = _login(backend, REVIEWER)
    current, following = services.review_items(backend, user)
    services.media_for(backend, current)
    assert not backend.media.ready(following.ref)
    services.prefetch(backend, [following])
    deadline = time.monotonic() + 30
    while not backend.media.ready(following.ref) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.media.ready(following.ref)
    outcome = services.record_answers(backend, user, [services.Answer(current.vessel_id, "flowing", 4.5)],
                                      offered=[current.vessel_id, following.vessel_id])
    assert outcome == services.AnswerOutcome(stored=(current.vessel_id,))
    with backend.factory() as session:
        rows = session.execute(select(Review.vessel_id, Review.user_id, Review.answer, Review.seconds)).all()
    assert rows == [(current.vessel_id, user.id, "flowing", 4.5)]
    after = services.review_items(backend, user)
    assert after[0].vessel_id == following.vessel_id
    assert current.vessel_id not in {i.vessel_id for i in after}


def test_media_cache_prefetches_in_the_background_and_does_not_keep_failures():
    calls: list[str] = []
    gate = threading.Event()

    def prepare(ref: StackRef) -> ReviewMedia:
        calls.append(ref.filename)
        gate.wait(5)
        if ref.filename == "bad.mp4":
            raise ValueError("bad.mp4: broken")
        return ReviewMedia(ref.filename, b"mp4", np.zeros((2, 4, 4), np.uint8), 1, None)

    cache = MediaCache(prepare, capacity=2)
    good, bad = StackRef("good.mp4", "good"), StackRef("bad.mp4", "bad")
    cache.prefetch([good, bad])
    assert not cache.ready(good)
    gate.set()
    assert cache.get(good).filename == "good.mp4" and cache.ready(good)
    with pytest.raises(ValueError, match="broken"):
        cache.get(bad)
    with pytest.raises(ValueError, match="broken"):
        cache.get(bad)
    assert calls.count("bad.mp4") == 2 and calls.count("good.mp4") == 1
    cache.get(StackRef("third.mp4", "third"))
    cache.get(StackRef("fourth.mp4", "fourth"))
    cache.get(good)  # evicted by capacity 2: prepared again
    assert calls.count("good.mp4") == 2
    cache.close()


def test_export_bytes_csv_and_parquet(backend):
    csv = pd.read_csv(io.BytesIO(services.export_bytes(backend, suffix=".csv", actor="ada")))
    parquet = pd.read_parquet(io.BytesIO(services.export_bytes(backend, suffix=".parquet")))
    assert len(csv) == len(parquet) == 220
    assert set(csv["filename"]) == set(parquet["filename"])
    with pytest.raises(ValueError, match="csv or .parquet"):
        services.export_bytes(backend, suffix=".xlsx")
    from db.audit import recent_events
    with backend.factory() as session:
        events = [(e.actor, e.action, e.details) for e in recent_events(session, entity="export")]
    assert events == [(None, "export.download", {"format": "parquet", "rows": 220}),
                      ("ada", "export.download", {"format": "csv", "rows": 220})]


def test_user_changes_are_applied_and_audited(backend):
    admin = _login(backend, ADMIN)
    services.change_user(backend, admin, "add", name="newbie", password="long-enough-1", role="reviewer")
    table = services.users_frame(backend)
    assert "password_hash" not in table.columns
    newbie = int(table.loc[table["name"] == "newbie", "id"].item())
    services.change_user(backend, admin, "role", user_id=newbie, role="admin")
    services.change_user(backend, admin, "deactivate", user_id=newbie)
    with backend.factory() as session:
        from db.audit import recent_events
        actions = [e.action for e in recent_events(session, entity="user") if e.actor == ADMIN[0]]
        assert actions[:3] == ["user.deactivate", "user.role", "user.add"]
        assert services.current_user(session, services.SessionUser(newbie, "newbie", "admin")) is None


def test_dashboard_data_after_reviews(backend, app_data):
    reviewer, admin = _login(backend, REVIEWER), _login(backend, ADMIN)
    item = services.review_items(backend, reviewer)[0]
    services.record_answers(backend, reviewer, [services.Answer(item.vessel_id, "stalled", 2.0)],
                            offered=[item.vessel_id])
    with backend.factory.begin() as session:
        queue.submit_review(session, user_id=admin.id, vessel_id=item.vessel_id, answer="flowing", seconds=3.0)
    data = services.dashboard_data(backend)
    assert data["per_hour"]["reviews"].sum() == 2
    assert set(data["agreement"]["user"]) == {REVIEWER[0], ADMIN[0]}
    assert (data["agreement"]["agreement"] == 0).all()  # two reviewers, opposite answers
    assert data["disagreements"].empty  # a tie has no majority


def test_claims_are_exclusive_on_both_backends(app_data_any: AppData):
    backend = services.open_backend(app_data_any.settings)
    try:
        reviewer, admin = _login(backend, REVIEWER), _login(backend, ADMIN)
        mine = services.review_items(backend, reviewer, ahead=12)
        theirs = services.review_items(backend, admin, ahead=12)
        assert len(mine) == 12 and len(theirs) == 8
        assert not {i.vessel_id for i in mine} & {i.vessel_id for i in theirs}
        services.record_answers(backend, reviewer, [services.Answer(mine[0].vessel_id, "bad_stack")],
                                offered=[mine[0].vessel_id])
        with backend.factory() as session:
            assert session.scalar(select(Review.answer)) == "bad_stack"
    finally:
        backend.close()
