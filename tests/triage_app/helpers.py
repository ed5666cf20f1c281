"""AppTest helpers: start the app on a prepared database, log in through the form, answer in the
review viewer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from db.engine import make_engine, make_session_factory
from db.users import login
from testkit.app_data import AppData
from triage_app.settings import DB_ENV, STORE_ENV
from triage_app.viewer import KEY as VIEWER

ROOT = Path(__file__).resolve().parents[2]
ENTRY = str(ROOT / "triage_app" / "app.py")
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
        with make_session_factory(engine)() as session:  # rolled back: the check leaves no audit event
            return login(session, name=name, password=password).user is not None
    finally:
        engine.dispose()


class Viewer:
    """The review viewer's side of the Review page (AppTest runs no JavaScript): answers the stack it
    shows and sends every unacknowledged answer through the viewer's ``answers`` state, as its
    script does."""

    def __init__(self, at) -> None:  # noqa: ANN001 - an AppTest
        self.at = at
        self.pending: list[dict] = []
        self.sent = 0
        self.answered: set[int] = set()

    def data(self) -> dict | None:
        """What the page gave the viewer in its last run (None when it drew no viewer)."""
        protos = [e.proto for e in self.at.get("bidi_component") if e.key == VIEWER]
        if not protos:
            return None
        return json.loads(protos[0].json if protos[0].WhichOneof("data") == "json" else protos[0].mixed.json)

    def shown(self) -> dict:
        """The stack on screen: the first one the page sent that this viewer has not answered."""
        return next(item for item in self.data()["items"] if item["id"] not in self.answered)

    def answer(self, answer: str, *, run: bool = True) -> dict:
        """Answer the stack on screen (``run=False``: before the page's next run, as fast keys do)."""
        item = self.shown()
        self.pending.append({"id": item["id"], "answer": answer, "seconds": 1.5})
        self.answered.add(item["id"])
        if run:
            self.send()
        return item

    def send(self) -> None:
        self.sent += 1
        self.at.session_state[VIEWER] = {"answers": {"sent": self.sent, "pending": list(self.pending)}}
        self.at.run()
        assert not self.at.exception, self.at.exception
        acknowledged = set(self.data()["acknowledged"]) if self.data() else set()
        self.pending = [p for p in self.pending if p["id"] not in acknowledged]
