"""The projects' standing in the app (AppTest): the Thresholds page lists them under the proposal,
saving stores it, and the Dashboard lists them under the active policy, drift warned."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from db.models import ProjectStatus
from db.policy import save_policy
from testkit.app_data import ADMIN
from tests.triage_app.helpers import PAGES, logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def _projects_table(at):
    """The page's projects table (AppTest does not expose a dataframe's key)."""
    tables = [frame.value for frame in at.dataframe if "answers still needed" in frame.value.columns]
    assert len(tables) == 1
    return tables[0]


def test_thresholds_page_lists_the_projects_and_saving_stores_them_for_the_dashboard(sessions):
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "thresholds.py")).run()
    assert not at.exception, at.exception
    table = _projects_table(at)
    assert table["project"].tolist() == ["p0", "p1", "p2"]
    # about 18 stalls each at 0.99 / 0.95: a gated project (fewer than MIN_ANSWERS answers of a side's
    # class, or too many changed) still needs answers, a validated one none
    gated = table["status"] == "gated"
    assert set(table["status"]) <= {"validated", "gated"}
    assert (table.loc[gated, "answers still needed"] > 0).all() and (table.loc[~gated, "answers still needed"] == 0).all()
    assert any(c.value.startswith(f"projects: {(~gated).sum()} validated") for c in at.caption)
    standing = table.set_index("project")["status"].to_dict()
    at.button(key="thresholds_use_tuned").click().run()
    at.button(key="thresholds_save").click().run()
    assert not at.exception and "active policy" in at.success[0].value
    with sessions.begin() as session:
        session.execute(update(ProjectStatus).where(ProjectStatus.project_id == "p1")
                        .values(status="drifted", low_open=False, high_open=False))
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception, at.exception
    listed = _projects_table(at)
    assert listed.set_index("project")["status"].to_dict() == standing | {"p1": "drifted"}
    assert any("Drift: the stacks of p1 no longer look like their reference" in w.value for w in at.warning)


def test_dashboard_says_when_the_active_policy_has_no_gate(sessions, app_data):
    with sessions.begin() as session:
        save_policy(session, model_run_id=app_data.model_run_id, t_low=0.45, t_high=0.6, created_by=ADMIN[0])
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception, at.exception
    assert any("saved without the project gate" in c.value for c in at.caption)
