"""Session tokens: valid until they expire, the user logs out, changes password or is deactivated."""

from __future__ import annotations

import stat
import time

import pytest

from db.users import deactivate_user, end_sessions, get_user, set_password
from testkit.app_data import ADMIN, REVIEWER
from triage_app import services, sessions


@pytest.fixture
def backend(app_data):
    backend = services.open_backend(app_data.settings)
    yield backend
    backend.close()


def _token(backend, who) -> tuple[services.SessionUser, str]:
    with backend.factory.begin() as session:
        user = services.login_attempt(session, name=who[0], password=who[1]).user
    return user, sessions.issue_token("s3cret", user_id=user.id, version=user.session_version)


def _resume(backend, token, secret="s3cret"):
    with backend.factory() as session:
        return services.resume(session, token=token, secret=secret)


def test_a_token_resumes_its_user_until_the_sessions_end(backend):
    user, token = _token(backend, REVIEWER)
    assert _resume(backend, token) == user
    assert _resume(backend, token, secret="another") is None
    assert _resume(backend, token[:-2] + "xx") is None
    assert _resume(backend, None) is None
    with backend.factory.begin() as session:
        end_sessions(session, user_id=user.id, actor=user.name)
    assert _resume(backend, token) is None
    with backend.factory() as session:
        assert services.current_user(session, user) is None  # the open session ends too


@pytest.mark.parametrize("change", ["password", "deactivate"])
def test_password_change_and_deactivation_end_sessions(backend, change):
    user, token = _token(backend, REVIEWER)
    with backend.factory.begin() as session:
        if change == "password":
            set_password(session, user_id=user.id, password="brand-new-password", actor=ADMIN[0])
        else:
            deactivate_user(session, user_id=user.id, actor=ADMIN[0])
    assert _resume(backend, token) is None


def test_tokens_expire(backend):
    user, token = _token(backend, REVIEWER)
    time.sleep(2.1)  # itsdangerous counts whole seconds
    with backend.factory() as session:
        assert sessions.user_for_token(session, "s3cret", token, max_age_s=1) is None
        assert sessions.user_for_token(session, "s3cret", token, max_age_s=60).id == user.id


def test_the_secret_is_made_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv(sessions.SECRET_ENV, raising=False)
    first = sessions.load_secret(tmp_path)
    assert sessions.load_secret(tmp_path) == first and len(first) >= 40
    assert stat.S_IMODE((tmp_path / sessions.SECRET_FILE).stat().st_mode) == 0o600
    monkeypatch.setenv(sessions.SECRET_ENV, "from-the-environment")
    assert sessions.load_secret(tmp_path) == "from-the-environment"


def test_throttled_login_says_how_long_to_wait(backend):
    with backend.factory.begin() as session:
        for _ in range(5):
            assert services.login_attempt(session, name=ADMIN[0], password="wrong-password").user is None
    with backend.factory.begin() as session:
        outcome = services.login_attempt(session, name=ADMIN[0], password=ADMIN[1])
    assert outcome.user is None and outcome.wait_s > 0
    with backend.factory() as session:
        assert get_user(session, name=ADMIN[0]).session_version == 0


def test_a_token_says_when_its_session_began_and_the_counter_counts_from_then(backend, app_data):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from db import queue
    from db.models import Prediction

    user, _ = _token(backend, REVIEWER)
    began = datetime.now(timezone.utc) - timedelta(minutes=5)
    token = sessions.issue_token("s3cret", user_id=user.id, version=user.session_version, started=began.timestamp())
    assert abs(services.session_started(token=token, secret="s3cret") - began) < timedelta(milliseconds=1)
    assert services.session_started(token=token, secret="another") is None
    with backend.factory.begin() as session:
        stacks = session.scalars(select(Prediction.vessel_id).limit(3)).all()
        for minutes_ago, stack in zip((10, 2, 1), stacks):
            queue.submit_review(session, user_id=user.id, vessel_id=stack, answer="flowing",
                                now=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago))
    assert services.reviewed_since(backend, user, since=began) == 2


def test_a_ticket_stands_for_its_session_for_a_minute_only(backend):
    from datetime import datetime, timedelta, timezone

    user, _ = _token(backend, REVIEWER)
    began = datetime.now(timezone.utc) - timedelta(hours=1)
    ticket = services.session_ticket(user, secret="s3cret", started=began)
    token = sessions.token_for_ticket("s3cret", ticket)
    assert _resume(backend, token) == user  # the cookie's token, renewed now, keeps when the session began
    assert abs(services.session_started(token=token, secret="s3cret") - began) < timedelta(milliseconds=1)
    assert sessions.token_for_ticket("another", ticket) is None
    assert sessions.token_for_ticket("s3cret", token) is None  # a token is no ticket
    time.sleep(2.1)  # itsdangerous counts whole seconds
    assert sessions.token_for_ticket("s3cret", ticket, max_age_s=1) is None
