"""AppTest helpers: start the app on a prepared database and log in through the form."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from db.engine import make_engine, make_session_factory
from db.users import authenticate
from testkit.app_data import AppData
from triage_app.settings import DB_ENV, STORE_ENV

ENTRY = str(Path(__file__).resolve().parents[2] / "triage_app" / "app.py")
PAGES = Path(ENTRY).parent / "app_pages"


def use_app_data(monkeypatch: pytest.MonkeyPatch, data: AppData) -> None:
    """Point the app at ``data`` and drop backends cached by earlier tests."""
    monkeypatch.setenv(DB_ENV, data.settings.db_url)
    monkeypatch.setenv(STORE_ENV, str(data.settings.store_path))
    st.cache_resource.clear()


def logged_in(name: str, password: str) -> AppTest:
    """A fresh app run, logged in through the real form."""
    at = AppTest.from_file(ENTRY, default_timeout=30).run()
    assert not at.exception, at.exception
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="login_submit").click().run()
    assert not at.exception, at.exception
    return at


def can_log_in(url: str, name: str, password: str) -> bool:
    """Whether ``name`` can log in with ``password`` on the database at ``url``."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            return authenticate(session, name=name, password=password) is not None
    finally:
        engine.dispose()
