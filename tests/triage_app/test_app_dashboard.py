"""The Dashboard at n = 1: one saved policy and one reviewer read well (a labelled point on a sane
axis, a note instead of an empty table), and the active policy's promise is one sentence with the
reviews it saves."""

from __future__ import annotations

import pandas as pd
import pytest

from core.policy.promise import promise_sentence
from db.engine import make_engine, make_session_factory
from db.policy import save_policy
from testkit.app_data import ADMIN, REVIEWER
from tests.triage_app.helpers import PAGES, Viewer, logged_in, use_app_data
from triage_app import charts


@pytest.fixture(autouse=True)
def _app(monkeypatch, app_data):
    use_app_data(monkeypatch, app_data)


def _save_policy(app_data, **targets) -> None:
    engine = make_engine(app_data.settings.db_url)
    with make_session_factory(engine).begin() as session:
        save_policy(session, model_run_id=app_data.model_run_id, t_low=0.45, t_high=0.6, created_by=ADMIN[0],
                    **targets)  # the queue's scores lie in (0.3, 0.75): some are decided automatically
    engine.dispose()


def test_one_saved_policy_is_a_labelled_point_on_a_two_day_axis():
    saved = pd.Timestamp("2026-12-06 10:00:00.123456", tz="UTC")
    history = pd.DataFrame({"created_at": [saved], "policy_id": [1], "run": ["/labs/run-1"], "created_by": ["ada"],
                            "active": [True], "auto_share": [0.62]})
    figure = charts.auto_share_figure(history)
    start, end = (pd.Timestamp(value) for value in figure.layout.xaxis.range)
    assert end - start == pd.Timedelta(days=2) and start < saved.tz_localize(None) < end
    assert figure.data[0].text == ("62%",) and "text" in figure.data[0].mode
    assert figure.layout.showlegend is True


def test_agreement_with_one_reviewer_shows_the_model_series_labelled_with_a_legend():
    by_day = pd.DataFrame({"day": [pd.Timestamp("2026-12-06", tz="UTC")], "with_reviewers": [float("nan")],
                           "reviewer_answers": [0], "with_model": [0.8], "model_answers": [5]})
    figure = charts.agreement_figure(by_day)
    assert [trace.name for trace in figure.data] == ["with the model"]
    assert figure.data[0].text == ("80% of 5",) and figure.layout.showlegend is True
    start, end = (pd.Timestamp(value) for value in figure.layout.xaxis.range)
    assert end - start == pd.Timedelta(days=2)


def test_many_points_keep_their_span_and_drop_the_labels():
    days = pd.date_range("2026-11-01", periods=30, freq="D", tz="UTC")
    by_day = pd.DataFrame({"day": days, "with_reviewers": 0.9, "reviewer_answers": 4, "with_model": 0.8,
                           "model_answers": 6})
    figure = charts.agreement_figure(by_day)
    assert all("text" not in trace.mode for trace in figure.data)
    start, end = (pd.Timestamp(value) for value in figure.layout.xaxis.range)
    assert start < days[0].tz_localize(None) and end > days[-1].tz_localize(None)
    assert end - start < pd.Timedelta(days=33)


def test_the_dashboard_with_one_reviewer_says_what_is_missing_instead_of_empty_tables():
    at = logged_in(*REVIEWER)
    Viewer(at).answer("stalled")
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert "Needs stacks answered by two or more reviewers." in captions
    assert any(c.startswith("Agreement between reviewers appears once") for c in captions)
    assert not [frame for frame in at.dataframe if frame.value.empty]
    assert any(i.value.startswith("No active policy") for i in at.info)


def test_the_dashboard_states_the_active_policys_promise_and_the_reviews_it_saves(app_data):
    _save_policy(app_data, target_sensitivity=0.99, target_specificity=0.95, confidence=0.9, promise="relative")
    at = logged_in(*REVIEWER)
    at.switch_page(str(PAGES / "dashboard.py")).run()
    assert not at.exception, at.exception
    sentence = promise_sentence("relative", sensitivity=0.99, specificity=0.95, confidence=0.9)
    assert any(m.value == f"**The active policy's promise.** {sentence}" for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    saved = next(c.value for c in at.caption if c.value.startswith("It decides "))
    automatic = int(saved.split()[2].replace(",", ""))
    assert automatic > 0 and f"{automatic:,} reviews saved at 1 per stack" in saved
    assert f"of {automatic + int(metrics['Routed to humans'].replace(',', '')):,} scored stacks" in saved

