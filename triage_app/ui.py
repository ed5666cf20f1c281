"""Streamlit glue shared by the entry script and the pages: the cached backend, login, role checks.

Roles are enforced on the server: the router adds admin pages only for admins, and every admin
page calls :func:`require_admin`, which re-reads the user's role from the database on each run.

Sessions survive a reload: after a login the browser keeps a signed, expiring token in an
HttpOnly cookie, which page scripts cannot read. The server sets it (:mod:`triage_app.server`)
when a small script mounted with ``st.components.v2`` posts the session's one-minute ticket; a
new browser session reads the cookie back with ``st.context.cookies`` and renews it the same way.
See :mod:`triage_app.sessions` for what makes a token valid.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import streamlit as st
from PIL import Image

from triage_app import services, sessions
from triage_app.settings import Settings, resolve, video_dirs

USER_KEY = "auth_user"
TICKET_KEY = "auth_ticket"
STARTED_KEY = "auth_started"
REFUSED_KEY = "nav_refused"

_COOKIE_JS = """
export default function (component) {
    const { data } = component;
    if (!data) return;
    const body = data.ticket || "";
    if (window.stalltriageCookieSent === body) return;  // once per ticket (or logout) and page
    window.stalltriageCookieSent = body;
    fetch(data.ticket ? data.set_route : data.clear_route, { method: "POST", body, credentials: "same-origin" });
}
"""
_cookie = st.components.v2.component("stalltriage_session_cookie", js=_COOKIE_JS)


@st.cache_resource(show_spinner=False)
def _backend(db_url: str, store_path: str, video_dirs: tuple[str, ...]) -> services.Backend:
    settings = Settings(data_dir=Path(store_path).parent, db_url=db_url, store_path=Path(store_path))
    return services.open_backend(settings, video_dirs=video_dirs)


def backend() -> services.Backend:
    """The process-wide backend for the configured database, store and video folders."""
    settings = resolve(None)
    return _backend(settings.db_url, str(settings.store_path), video_dirs())


@st.cache_resource(show_spinner=False)
def page_icon() -> Image.Image:
    """The browser tab's icon, drawn here: a named Material icon would be fetched from Google's
    font servers by the browser, which fails on an offline lab machine."""
    icon = np.zeros((64, 64, 4), np.uint8)
    cv2.circle(icon, (32, 32), 30, (214, 39, 40, 255), -1)  # a red vessel cross-section
    cv2.circle(icon, (32, 32), 12, (255, 140, 20, 255), 4)  # with an orange outline
    return Image.fromarray(icon)


@st.cache_resource(show_spinner=False)
def _secret(folder: str) -> str:
    return sessions.load_secret(Path(folder))


def secret() -> str:
    """The session-signing secret of this data folder."""
    return _secret(str(resolve(None).store_path.parent))


def session_user() -> services.SessionUser | None:
    """The logged-in user of this browser session, re-checked against the database on every run.

    A new browser session (a reload, a direct URL) is resumed from the session cookie. None if
    logged out, deactivated, removed, or the user's sessions were ended since.
    """
    user = st.session_state.get(USER_KEY)
    with backend().factory() as session:
        if user is None:
            token = st.context.cookies.get(sessions.COOKIE)
            current = services.resume(session, token=token, secret=secret())
            if current is not None:  # a new ticket renews the cookie: the session slides on while used
                _keep_session(current, services.session_started(token=token, secret=secret()))
        else:
            current = services.current_user(session, user)
    if current is None:
        for key in (USER_KEY, TICKET_KEY, STARTED_KEY):
            st.session_state.pop(key, None)
    elif current != user:
        st.session_state[USER_KEY] = current
    return current


def _keep_session(user: services.SessionUser, started: datetime) -> None:
    """Remember the logged-in user and when the session began; the page gets a ticket for the cookie."""
    st.session_state.update({USER_KEY: user, STARTED_KEY: started,
                             TICKET_KEY: services.session_ticket(user, secret=secret(), started=started)})


def session_started() -> datetime:
    """When this login session began (at the login, carried over a reload by the session cookie)."""
    return st.session_state.setdefault(STARTED_KEY, datetime.now(timezone.utc))


def sync_cookie() -> None:
    """Keep the browser's session cookie in step with this session: set (by the server, from this
    session's ticket) while logged in, else cleared."""
    _cookie(key="auth_cookie", data={"ticket": st.session_state.get(TICKET_KEY), "set_route": sessions.SESSION_ROUTE,
                                     "clear_route": sessions.LOGOUT_ROUTE}, height=0)


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


def admin_only(title: str, *, url_path: str, home: st.Page) -> st.Page:
    """A hidden stand-in for an admin page in a reviewer's navigation.

    Without it, a reviewer opening an admin page's URL (a bookmark, a link from an admin) lands on
    the default page without a word. The stand-in is no admin page (nothing of it runs): it
    notes why and switches to ``home``, where :func:`show_refusal` says so.
    """
    def refuse() -> None:
        st.session_state[REFUSED_KEY] = f"{title} is a page for admins; you are logged in as a reviewer."
        st.switch_page(home)

    return st.Page(refuse, title=title, url_path=url_path, visibility="hidden")


def show_refusal() -> None:
    """The message of an admin page just refused (see :func:`admin_only`), once."""
    message = st.session_state.pop(REFUSED_KEY, None)
    if message:
        st.warning(message, icon=":material/lock:")


def login_form() -> None:
    """Username + password form; on success the user and their token are kept in the session and
    the app reruns. Failed attempts are audited and throttled (``db.users.login``)."""
    st.title("StallTriage")
    with st.form("login_form"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", key="login_submit", type="primary")
    if submitted:
        with backend().factory.begin() as session:
            outcome = services.login_attempt(session, name=name, password=password)
        if outcome.wait_s > 0:
            st.error(f"Too many failed logins for this name: try again in {outcome.wait_s:.0f} s.")
        elif outcome.user is None:
            st.error("Unknown user name or wrong password.")
        else:
            _keep_session(outcome.user, datetime.now(timezone.utc))
            st.rerun()


def logout() -> None:
    """End the user's sessions (their cookies stop working) and forget everything this session kept."""
    user = st.session_state.get(USER_KEY)
    if user is not None:
        services.logout(backend(), user)
    for key in list(st.session_state):
        del st.session_state[key]
