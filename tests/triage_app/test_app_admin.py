"""Thresholds, Export, Users and Dashboard through the real entry script (AppTest)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db import queue
from db.engine import make_engine, make_session_factory
from db.models import TriagePolicy
from db.policy import active_policy
from tests.fixtures.app_data import ADMIN, REVIEWER
from tests.triage_app.helpers import PAGES, logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


@pytest.fixture
def sessions(app_data):
    engine = make_engine(app_data.settings.db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _thresholds(at, sensitivity: float, specificity: float, confidence: float):
    at.switch_page(str(PAGES / "thresholds.py")).run()
    at.number_input(key="thresholds_sensitivity").set_value(sensitivity)
    at.number_input(key="thresholds_specificity").set_value(specificity)
    at.number_input(key="thresholds_confidence").set_value(confidence).run()
    assert not at.exception, at.exception
    return at


def test_thresholds_page_warns_about_too_few_stalls():
    at = _thresholds(logged_in(*ADMIN), 0.99, 0.95, 0.95)
    assert any("at least 299 are needed" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 3
    assert {m.label for m in at.metric} >= {"Decided automatically", "Sensitivity", "Specificity"}


def test_saving_a_policy_reroutes_the_queue(sessions):
    with sessions() as session:
        assert active_policy(session) is None
        assert queue.queue_stats(session).routed_to_humans == 20
    at = _thresholds(logged_in(*ADMIN), 0.85, 0.9, 0.8)
    assert not at.warning
    captions = " ".join(c.value for c in at.caption)
    assert "Reference: 200 reference stacks" in captions and "200 out_of_fold; tier 1: 200" in captions
    assert "Humans: no known-answer reviews yet: human error from the prior" in captions
    t_low = at.number_input(key=[n.key for n in at.number_input if n.key.startswith("thresholds_t_low")][0]).value
    t_high = at.number_input(key=[n.key for n in at.number_input if n.key.startswith("thresholds_t_high")][0]).value
    at.button(key="thresholds_save").click().run()
    assert not at.exception and "active policy" in at.success[0].value
    with sessions() as session:
        policy = active_policy(session)
        assert (policy.t_low, policy.t_high, policy.created_by) == (pytest.approx(t_low), pytest.approx(t_high), ADMIN[0])
        assert (policy.target_sensitivity, policy.target_specificity, policy.confidence) == (0.85, 0.9, 0.8)
        routed = queue.queue_stats(session).routed_to_humans
        assert 0 < routed < 20
    reviewer = logged_in(*REVIEWER)
    shown = reviewer.image[1].proto.imgs[0].caption.split(":")[0]
    with sessions() as session:
        probability = session.execute(select(queue.Prediction.probability).join(queue.Vessel)
                                      .where(queue.Vessel.filename == shown)).scalar_one()
    assert t_low < probability < t_high


def test_manual_thresholds_must_be_ordered(sessions):
    at = _thresholds(logged_in(*ADMIN), 0.85, 0.9, 0.8)
    low_key = [n.key for n in at.number_input if n.key.startswith("thresholds_t_low")][0]
    at.number_input(key=low_key).set_value(1.0).run()
    assert [e.value.split(",")[0] for e in at.error] == ["t_low must be below t_high"]
    assert not [b for b in at.button if b.key == "thresholds_save"]
    with sessions() as session:
        assert session.scalar(select(TriagePolicy.id)) is None


def test_a_side_switched_off_is_saved_as_null_and_the_known_answer_rate_is_set(sessions):
    at = _thresholds(logged_in(*ADMIN), 0.85, 0.9, 0.8)
    at.checkbox(key=[c.key for c in at.checkbox if c.key.startswith("thresholds_t_low")][0]).uncheck().run()
    at.button(key="thresholds_save").click().run()
    at.number_input(key="thresholds_known_rate").set_value(0.2)
    at.button(key="thresholds_known_save").click().run()
    assert not at.exception and "Known-answer rate set to 20%." in [s.value for s in at.success]
    with sessions() as session:
        policy = active_policy(session)
        assert policy.t_low is None and 0 < policy.t_high < 1
        from db.known_answers import known_answer_rate
        assert known_answer_rate(session) == 0.2


def test_export_page_offers_csv_and_parquet():
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "export.py")).run()
    assert not at.exception
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["Download CSV", "Download Parquet"]


def test_users_page_adds_a_user_who_can_log_in():
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "users.py")).run()
    at.text_input(key="users_add_name").input("newcomer")
    at.selectbox(key="users_add_role").select("reviewer")
    at.text_input(key="users_add_password").input("newcomer-password")
    at.button(key="users_add_submit").click().run()
    assert not at.exception and [s.value for s in at.success] == ["Added reviewer newcomer."]
    newcomer = logged_in("newcomer", "newcomer-password")
    assert [t.value for t in newcomer.title] == ["Review"]


def test_users_page_reports_bad_input():
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "users.py")).run()
    at.text_input(key="users_add_name").input(REVIEWER[0])
    at.text_input(key="users_add_password").input("whatever-password")
    at.button(key="users_add_submit").click().run()
    assert [e.value for e in at.error] == [f"user {REVIEWER[0]!r} already exists"]


def test_dashboard_counts_reviews():
    at = logged_in(*REVIEWER)
    at.button(key="review_stalled").click().run()
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reviewed"] == "1" and metrics["Routed to humans"] == "20"
    assert any("No answers to known-answer stacks yet" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1
