"""Users: hashed passwords, roles, authentication, audited changes."""

from __future__ import annotations

import pytest

from db.audit import recent_events
from db.errors import DatabaseInputError, UnknownUserError
from db.users import add_user, deactivate_user, get_user, list_users, login, set_role


def test_users_roles_and_authentication(sqlite_db_url: str) -> None:
    from db.engine import make_engine, make_session_factory

    factory = make_session_factory(make_engine(sqlite_db_url))
    with factory.begin() as session:
        admin = add_user(session, name="ada", password="correct horse", role="admin", actor="cli")
        add_user(session, name="bob", password="battery staple", role="reviewer", actor="ada")
        assert admin.password_hash.startswith("$argon2id$") and "correct horse" not in admin.password_hash
    with factory() as session:  # a login is audited: rolled back, so the trail below holds only the changes
        assert login(session, name="ada", password="correct horse").user.role == "admin"
        assert login(session, name="ada", password="wrong password").user is None
        assert login(session, name="nobody", password="correct horse").user is None
    with factory.begin() as session:
        with pytest.raises(DatabaseInputError, match="already exists"):
            add_user(session, name="ada", password="whatever12", role="reviewer")
        with pytest.raises(DatabaseInputError, match="role must be one of"):
            add_user(session, name="eve", password="whatever12", role="root")
        with pytest.raises(DatabaseInputError, match="at least 8"):
            add_user(session, name="eve", password="short", role="reviewer")
        bob = get_user(session, name="bob")
        set_role(session, user_id=bob.id, role="admin", actor="ada")
        deactivate_user(session, user_id=bob.id, actor="ada")
    with factory() as session:
        assert [u.name for u in list_users(session)] == ["ada"]
        with pytest.raises(UnknownUserError, match="no active user 'bob'"):
            get_user(session, name="bob")
        with pytest.raises(UnknownUserError, match="with id 999"):
            get_user(session, user_id=999)
        actions = [(e.actor, e.action) for e in recent_events(session, entity="user")]
        assert actions == [("ada", "user.deactivate"), ("ada", "user.role"), ("ada", "user.add"), ("cli", "user.add")]
        assert login(session, name="bob", password="battery staple").user is None
