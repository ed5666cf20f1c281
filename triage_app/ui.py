"""Streamlit glue shared by the entry script and the pages: the cached backend, login, role checks.

Roles are enforced on the server: the router adds admin pages only for admins, and every admin
page calls :func:`require_admin`, which re-reads the user's role from the database on each run.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from triage_app import services
from triage_app.settings import Settings, resolve, video_dirs

USER_KEY = "auth_user"


@st.cache_resource(show_spinner=False)
def _backend(db_url: str, store_path: str, video_dirs: tuple[str, ...]) -> services.Backend:
    settings = Settings(data_dir=Path(store_path).parent, db_url=db_url, store_path=Path(store_path))
    return services.open_backend(settings, video_dirs=video_dirs)


def backend() -> services.Backend:
    """The process-wide backend for the configured database, store and video folders."""
    settings = resolve(None)
    return _backend(settings.db_url, str(settings.store_path), video_dirs())


def session_user() -> services.SessionUser | None:
    """The logged-in user of this browser session, re-checked against the database (None if
    logged out, deactivated or removed); the role is the database's current one."""
    user = st.session_state.get(USER_KEY)
    if user is None:
        return None
    with backend().factory() as session:
        role = services.current_role(session, user)
    if role is None:
        del st.session_state[USER_KEY]
        return None
    if role != user.role:
        user = services.SessionUser(id=user.id, name=user.name, role=role)
        st.session_state[USER_KEY] = user
    return user


def require_login() -> services.SessionUser:
    """The logged-in user; stops the page otherwise."""
    user = session_user()
    if user is None:
        st.error("Please log in.")
        st.stop()
    return user


def require_admin() -> services.SessionUser:
    """The logged-in admin; stops the page for anyone else."""
    user = require_login()
    if not user.is_admin:
        st.error("This page is for admins.")
        st.stop()
    return user


def login_form() -> None:
    """Username + password form; on success the user is kept in the session and the app reruns."""
    st.title("StallTriage")
    with st.form("login_form"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", key="login_submit", type="primary")
    if submitted:
        with backend().factory.begin() as session:
            user = services.login(session, name=name, password=password)
        if user is None:
            st.error("Unknown user name or wrong password.")
        else:
            st.session_state[USER_KEY] = user
            st.rerun()


def logout() -> None:
    """Forget the user and everything this session kept."""
    for key in list(st.session_state):
        del st.session_state[key]
