"""Login and roles, through the real entry script (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from testkit.app_data import ADMIN, REVIEWER
from tests.triage_app.helpers import ENTRY, PAGES, logged_in, use_app_data
from triage_app import services


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def test_every_page_needs_a_login():
    at = AppTest.from_file(ENTRY, default_timeout=30).run()
    assert not at.exception
    assert at.text_input(key="login_password").proto.type == at.text_input(key="login_password").proto.PASSWORD
    assert not [b for b in at.button if b.key and b.key.startswith("review_")]
    for page in ("review", "dashboard", "thresholds", "crowd_errors", "export", "users"):
        direct = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=30).run()
        assert [e.value for e in direct.error] == ["Please log in."], page
        assert not direct.get("plotly_chart") and not direct.get("video")


def test_wrong_password_is_refused():
    at = logged_in(REVIEWER[0], "not-the-password")
    assert [e.value for e in at.error] == ["Unknown user name or wrong password."]
    assert "auth_user" not in at.session_state


def test_reviewer_gets_review_and_dashboard_only():
    at = logged_in(*REVIEWER)
    assert [t.value for t in at.title] == ["Review"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(PAGES / "thresholds.py"))
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception and [t.value for t in at.title] == ["Dashboard"]


@pytest.mark.parametrize("page", ["thresholds", "crowd_errors", "export", "users"])
def test_admin_pages_check_the_role_on_the_server(page, app_data):
    with services.open_backend(app_data.settings).factory() as session:
        reviewer = services.login_attempt(session, name=REVIEWER[0], password=REVIEWER[1]).user
    direct = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=30)
    direct.session_state["auth_user"] = services.SessionUser(reviewer.id, reviewer.name, "admin")  # forged role
    direct.run()
    assert [e.value for e in direct.error] == ["This page is for admins."]
    assert not direct.get("plotly_chart") and not direct.get("download_button") and not direct.dataframe


def test_admin_sees_every_page_and_can_log_out():
    at = logged_in(*ADMIN)
    for page in ("thresholds", "crowd_errors", "export", "users", "dashboard", "review"):
        at.switch_page(str(PAGES / f"{page}.py")).run()
        assert not at.exception, page
        assert not at.error, (page, [e.value for e in at.error])
    at.button(key="sidebar_logout").click().run()
    assert "auth_user" not in at.session_state and at.text_input(key="login_name")
