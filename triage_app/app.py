"""The Streamlit entry script: login gate, pages by role, shared sidebar.

Run it with ``stalltriage app`` (which passes the database, store and video folders through the
environment), or ``python -m streamlit run triage_app/app.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from triage_app import ui

PAGES = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="StallTriage", page_icon=ui.page_icon(), layout="wide")

user = ui.session_user()
if user is None:
    ui.login_form()
    ui.sync_cookie()
    st.stop()

ADMIN_PAGES = (("thresholds", "Thresholds", ":material/tune:"), ("crowd_errors", "Crowd errors", ":material/rule:"),
               ("export", "Export", ":material/download:"), ("users", "Users", ":material/group:"))
review = st.Page(PAGES / "review.py", title="Review", icon=":material/visibility:", default=True)
pages = [review, st.Page(PAGES / "dashboard.py", title="Dashboard", icon=":material/monitoring:")]
if user.is_admin:
    pages += [st.Page(PAGES / f"{name}.py", title=title, icon=icon) for name, title, icon in ADMIN_PAGES]
else:  # an admin page's URL opened directly lands on Review, saying why
    pages += [ui.admin_only(title, url_path=name, home=review) for name, title, _ in ADMIN_PAGES]
page = st.navigation(pages)
ui.show_refusal()

with st.sidebar:
    st.caption(f"Logged in as **{user.name}** ({user.role})")
    st.button("Log out", key="sidebar_logout", on_click=ui.logout)
    ui.sync_cookie()

page.run()
