"""The app's web server: Streamlit's own (``st.App``) plus the routes that set and clear the
session cookie from the server (:mod:`triage_app.cookie_routes`).

Why: a cookie written by page JavaScript (``document.cookie``) cannot be HttpOnly, so any script
that ever ran in the page could read the session token. Streamlit has no API to set a cookie from
a script run, but ``st.App`` serves extra routes. After a login (or when a reload resumes a
session, which renews the cookie: sliding expiry) the page gets a one-minute, signed **ticket**
naming the session, never the token itself; the page posts it to ``/auth/session`` and the
response sets the token as an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` when the request
came over HTTPS). ``/auth/logout`` clears it.

``stalltriage app`` serves this file (``streamlit run`` finds ``app`` in it); ``streamlit run
triage_app/app.py`` still serves the pages, but then a login does not survive a reload.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from triage_app.cookie_routes import ROUTES

app = st.App(Path(__file__).resolve().parent / "app.py", routes=ROUTES)
