"""Admin safety, session versions and login throttling in db.users (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from db.audit import recent_events
from db.errors import DatabaseInputError
from db.models import User, utcnow
from db.users import (FREE_FAILURES, add_user, deactivate_user, end_sessions, get_user, login, set_password,
                      set_role)


@pytest.fixture
def people(session_factory):
    with session_factory.begin() as session:
        ada = add_user(session, name="ada", password="ada-password", role="admin", actor="cli").id
        rita = add_user(session, name="rita", password="rita-password", role="reviewer", actor="cli").id
    return session_factory, ada, rita


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(people):
    factory, ada, rita = people
    with factory.begin() as session:
        with pytest.raises(DatabaseInputError, match="ada is the last active admin and cannot be demoted"):
            set_role(session, user_id=ada, role="reviewer", actor="ada")
        with pytest.raises(DatabaseInputError, match="ada is the last active admin and cannot be deactivated"):
            deactivate_user(session, user_id=ada, actor="ada")
    with factory() as session:
        assert get_user(session, user_id=ada).role == "admin"
        assert [e.action for e in recent_events(session, entity="user")] == ["user.add", "user.add"]
    with factory.begin() as session:  # with a second admin, the first may step down (audited)
        set_role(session, user_id=rita, role="admin", actor="ada")
        set_role(session, user_id=ada, role="reviewer", actor="ada")
    with factory.begin() as session:
        with pytest.raises(DatabaseInputError, match="rita is the last active admin"):
            deactivate_user(session, user_id=rita, actor="rita")
        with pytest.raises(DatabaseInputError, match="ada is already a reviewer"):
            set_role(session, user_id=ada, role="reviewer", actor="rita")
    with factory() as session:
        roles = dict(session.execute(select(User.name, User.role)).all())
        assert roles == {"ada": "reviewer", "rita": "admin"}
        events = [(e.actor, e.action, e.details.get("to")) for e in recent_events(session, entity="user")][:2]
        assert events == [("ada", "user.role", "reviewer"), ("ada", "user.role", "admin")]


def test_password_change_deactivation_and_logout_raise_the_session_version(people):
    factory, ada, rita = people
    with factory.begin() as session:
        versions = [get_user(session, user_id=rita).session_version]
        end_sessions(session, user_id=rita, actor="rita")
        versions.append(get_user(session, user_id=rita).session_version)
        set_password(session, user_id=rita, password="another-password", actor="ada")
        versions.append(get_user(session, user_id=rita).session_version)
        deactivate_user(session, user_id=rita, actor="ada")
        versions.append(session.get(User, rita).session_version)
    assert versions == [0, 1, 2, 3]


def test_failed_logins_are_audited_and_throttled_with_a_growing_delay(people):
    factory, _, _ = people
    for attempt in range(FREE_FAILURES):
        with factory.begin() as session:
            result = login(session, name="rita", password="wrong-password")
            assert result.user is None and result.wait_s == 0, attempt
    with factory.begin() as session:  # throttled: even the right password is not checked now
        refused = login(session, name="rita", password="rita-password", now=utcnow())
    assert refused.user is None and 0 < refused.wait_s <= 5
    later = utcnow() + timedelta(seconds=6)
    with factory.begin() as session:  # the sixth failure doubles the wait
        assert login(session, name="rita", password="still-wrong", now=later).user is None
    with factory.begin() as session:
        assert login(session, name="rita", password="rita-password", now=later + timedelta(seconds=5)).wait_s > 4
    with factory.begin() as session:
        assert login(session, name="rita", password="rita-password", now=later + timedelta(seconds=11)).user.name == "rita"
    with factory.begin() as session:  # a success resets the count
        assert login(session, name="rita", password="wrong-password", now=utcnow()).wait_s == 0
    with factory() as session:
        actions = [e.action for e in sorted(recent_events(session, entity="user"), key=lambda e: e.id)
                   if e.action.startswith("login.")]
    assert actions == ["login.failed"] * 5 + ["login.throttled", "login.failed", "login.throttled", "login.ok",
                                              "login.failed"]


def test_unknown_names_are_throttled_too(people):
    factory, _, _ = people
    for _ in range(FREE_FAILURES):
        with factory.begin() as session:
            login(session, name="mallory", password="guess-guess")
    with factory.begin() as session:
        assert login(session, name="mallory", password="guess-guess").wait_s > 0
