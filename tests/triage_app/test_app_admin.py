"""Thresholds, Export, Users and Dashboard through the real entry script (AppTest)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.policy.gate import MIN_ANSWERS
from db import queue
from db.models import Claim, PolicyRecord, Prediction, Stack
from db.policy import active_policy
from db.project_status import project_status
from db.queue_order import queue_order
from db.users import get_user, list_users
from testkit.app_data import ADMIN, REVIEWER
from tests.triage_app.helpers import PAGES, Viewer, logged_in, use_app_data


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def _input(at, prefix: str):
    return at.number_input(key=[n.key for n in at.number_input if n.key.startswith(prefix)][0])


def _thresholds(at, sensitivity: float, specificity: float, confidence: float):
    at.switch_page(str(PAGES / "thresholds.py")).run()
    _input(at, "thresholds_sensitivity").set_value(sensitivity)
    _input(at, "thresholds_specificity").set_value(specificity)
    _input(at, "thresholds_confidence").set_value(confidence).run()
    assert not at.exception, at.exception
    return at


def test_thresholds_page_warns_about_too_few_stalls():
    at = _thresholds(logged_in(*ADMIN), 0.99, 0.95, 0.95)
    assert any("at least 368 are needed" in w.value for w in at.warning)
    assert [i.value for i in at.info] == ['Relative to the human standard: the automatic decisions change at most 1% '
                                          'of the human "stalled" answers and at most 5% of the human "flowing" '
                                          'answers (95% confidence for both sides together).']
    assert len(at.get("plotly_chart")) == 4  # the frontier, the trade-off, the histogram, the ROC
    assert {m.label for m in at.metric} >= {"Decided automatically", "Sensitivity (bound)", "Specificity (bound)"}


def test_saving_a_policy_reroutes_the_queue(sessions):
    with sessions() as session:
        assert active_policy(session) is None
        assert queue.queue_stats(session).routed_to_humans == 20
    at = _thresholds(logged_in(*ADMIN), 0.9, 0.97, 0.8)
    assert not at.warning
    captions = " ".join(c.value for c in at.caption)
    assert "Reference: 200 reference stacks (53 stalled): 200 out_of_fold (53 stalled); tier 1: 200" in captions
    assert "Humans (absolute reading): no known-answer reviews yet: human error from the prior" in captions
    at.button(key="thresholds_use_tuned").click().run()
    t_low, t_high = _input(at, "thresholds_t_low").value, _input(at, "thresholds_t_high").value
    assert 0 < t_low < t_high < 1
    at.button(key="thresholds_save").click().run()
    assert not at.exception and "active policy" in at.success[0].value
    with sessions() as session:
        policy = active_policy(session)
        assert (policy.t_low, policy.t_high, policy.created_by) == (pytest.approx(t_low), pytest.approx(t_high), ADMIN[0])
        assert (policy.target_sensitivity, policy.target_specificity, policy.confidence) == (0.9, 0.97, 0.8)
        assert (policy.promise, policy.stall_share) == ("relative", 53 / 200)
        # about 18 stalled answers per project: one with fewer than MIN_ANSWERS is gated and decides nothing
        rows = project_status(session).set_index("project_id")
        assert (rows["status"] == "gated").any()
        assert (rows.loc[rows["stalled"] < MIN_ANSWERS, "status"] == "gated").all()
        stacks = session.execute(select(Prediction.probability, Stack.project_id).join(Stack)
                                 .where(Stack.split == "test")).all()
        decided = sum(p <= t_low and rows.loc[project, "low_open"] or p >= t_high and rows.loc[project, "high_open"]
                      for p, project in stacks)
        assert queue.queue_stats(session).routed_to_humans == 20 - decided
    with sessions.begin() as session:
        served = queue.claim_next(session, user_id=get_user(session, name=REVIEWER[0]).id)
        served_for_gate = session.scalar(select(Claim.gate).where(Claim.vessel_id == served.vessel_id))
    assert served_for_gate  # drawn at random first, so that the gate opens


def test_a_proposal_that_misses_its_targets_needs_a_named_confirmation(sessions):
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "thresholds.py")).run()
    at.radio(key=[r.key for r in at.radio if r.key.startswith("thresholds_promise")][0]).set_value("absolute").run()
    assert not at.exception, at.exception
    assert any("proposes the closest policy in reach" in c.value for c in at.caption)
    at.button(key="thresholds_use_tuned").click().run()
    confirm = at.checkbox(key="thresholds_confirm_shortfall")
    assert confirm.label.startswith("Save although the proposal misses its targets: sensitivity bound")
    assert at.button(key="thresholds_save").disabled
    confirm.check().run()
    assert not at.button(key="thresholds_save").disabled
    at.button(key="thresholds_save").click().run()
    with sessions() as session:
        assert active_policy(session).promise == "absolute"


def test_manual_thresholds_must_be_ordered(sessions):
    at = _thresholds(logged_in(*ADMIN), 0.85, 0.9, 0.8)
    for side in ("t_low", "t_high"):
        at.checkbox(key=[c.key for c in at.checkbox if c.key.startswith(f"thresholds_{side}_on")][0]).check().run()
    _input(at, "thresholds_t_low").set_value(1.0).run()
    assert [e.value.split(",")[0] for e in at.error] == ["t_low must be below t_high"]
    assert not [b for b in at.button if b.key == "thresholds_save"]
    with sessions() as session:
        assert session.scalar(select(PolicyRecord.id)) is None


def test_a_side_switched_off_is_saved_as_null_and_the_known_answer_rate_is_set(sessions):
    at = _thresholds(logged_in(*ADMIN), 0.85, 0.9, 0.8)
    at.button(key="thresholds_use_tuned").click().run()
    at.checkbox(key=[c.key for c in at.checkbox if c.key.startswith("thresholds_t_low_on")][0]).uncheck().run()
    at.button(key="thresholds_save").click().run()
    at.number_input(key="thresholds_known_rate").set_value(0.2)
    at.button(key="thresholds_known_save").click().run()
    assert not at.exception and "Known-answer rate set to 20%." in [s.value for s in at.success]
    with sessions() as session:
        policy = active_policy(session)
        assert policy.t_low is None and 0 < policy.t_high < 1
        from db.known_answers import known_answer_rate
        assert known_answer_rate(session) == 0.2


def test_thresholds_page_opens_on_the_saved_policy(sessions, app_data):
    from db.policy import save_policy

    with sessions.begin() as session:
        save_policy(session, model_run_id=app_data.model_run_id, t_low=0.35, t_high=0.7, reviews_required=2,
                    target_sensitivity=0.9, target_specificity=0.9, confidence=0.8, created_by="cli")
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "thresholds.py")).run()
    assert not at.exception
    values = {n.key.rsplit("_", 1)[0]: n.value for n in at.number_input if n.key != "thresholds_known_rate"}
    assert values == {"thresholds_sensitivity": 0.9, "thresholds_specificity": 0.9, "thresholds_confidence": 0.8,
                      "thresholds_reviews": 2, "thresholds_t_low": 0.35, "thresholds_t_high": 0.7}
    assert at.button(key="thresholds_save").disabled  # nothing to save: the proposal is the saved policy
    assert "Saved policy" in at.caption[0].value and "t_low 0.350000" in at.caption[0].value
    assert all(c.value for c in at.checkbox if c.key.startswith("thresholds_t_"))  # both sides decide
    shown = {m.label: m.value for m in at.metric if m.label == "To humans"}
    assert shown  # both columns show the queue they would route
    to_humans = [m.value for m in at.metric if m.label == "To humans"]
    assert to_humans[0] == to_humans[1]
    _input(at, "thresholds_t_low").set_value(0.3).run()
    assert not at.button(key="thresholds_save").disabled
    to_humans = [int(m.value.replace(",", "")) for m in at.metric if m.label == "To humans"]
    assert to_humans[1] >= to_humans[0]
    at.button(key="thresholds_use_saved").click().run()
    assert _input(at, "thresholds_t_low").value == 0.35


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
    assert at.text_input(key="users_add_name").value == REVIEWER[0]  # kept, to fix the typo


def _change(at, name: str, action: str):
    at.selectbox(key="users_change_name").select(name).run()
    at.radio(key="users_change_action").set_value(action).run()
    return at


def test_users_page_refuses_to_demote_the_last_admin(sessions):
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "users.py")).run()
    assert at.selectbox(key="users_change_name").value is None  # nobody preselected
    _change(at, ADMIN[0], "role")
    assert at.selectbox(key=[s.key for s in at.selectbox if s.key.startswith("users_change_role")][0]).value == "reviewer"
    at.button(key="users_change_apply").click().run()
    assert [w.value for w in at.warning] == [f"Confirm: {ADMIN[0]}: role admin → reviewer? You will lose the admin pages."]
    at.button(key="users_confirm").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"{ADMIN[0]} is the last active admin and cannot be demoted: "
                                           "make another user admin first"]
    with sessions() as session:
        assert get_user(session, name=ADMIN[0]).role == "admin"


def test_users_page_asks_before_a_deactivation(sessions):
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "users.py")).run()
    _change(at, REVIEWER[0], "deactivate")
    at.button(key="users_change_apply").click().run()
    with sessions() as session:
        assert get_user(session, name=REVIEWER[0]).active  # not yet: a confirmation is asked
    at.button(key="users_cancel").click().run()
    assert not at.warning
    at.button(key="users_change_apply").click().run()
    at.button(key="users_confirm").click().run()
    assert [s.value for s in at.success] == [f"{REVIEWER[0]}: deactivated (their sessions end)."]
    with sessions() as session:
        assert [u.name for u in list_users(session)] == [ADMIN[0]]
    audit = at.dataframe[-1].value
    assert audit["action"].iloc[0] == "user.deactivate" and audit["actor"].iloc[0] == ADMIN[0]


def test_dashboard_counts_reviews():
    at = logged_in(*REVIEWER)
    Viewer(at).answer("stalled")
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reviewed"] == "1" and metrics["Routed to humans"] == "20" and metrics["Still need reviews"] == "19"
    assert metrics["Pace"].endswith("/ day") and metrics["Done at this pace"] != "no pace yet"
    assert any("No answers to known-answer stacks yet" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 4  # burn-down, savings, agreement over time, throughput


def test_admins_see_the_learning_section_with_the_retrain_button(sessions):
    at = logged_in(*ADMIN)
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception, at.exception
    assert any(s.value == "Learning from reviews" for s in at.subheader)
    button = at.button(key="dashboard_retrain")
    assert not button.disabled
    with sessions() as session:
        has_policy = active_policy(session) is not None
    at.selectbox(key="dashboard_queue_order").set_value("uncertainty").run()
    assert not at.exception, at.exception
    with sessions() as session:
        assert queue_order(session) == "uncertainty"
    if has_policy:
        assert len(at.get("plotly_chart")) == 5  # the four of every dashboard, then the automatic share per policy
    else:
        assert any(i.value == "No policy saved yet." for i in at.info)
