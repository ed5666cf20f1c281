"""Tuning on the app's prepared database: the reference, the human error model, saving, the page's data."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from core.labels.skill import HumanErrorRates
from db import queue
from db.audit import recent_events
from db.models import CrowdAnswer, Prediction, Review, Stack
from db.policy import active_policy
from db.project_status import project_status
from testkit.app_data import ADMIN, AppData
from tests.db.helpers import add_plain_users
from triage_app import services, tuning


@pytest.fixture
def backend(app_data: AppData):
    backend = services.open_backend(app_data.settings)
    yield backend
    backend.close()


def _admin(backend) -> services.SessionUser:
    with backend.factory.begin() as session:
        return services.login_attempt(session, name=ADMIN[0], password=ADMIN[1]).user


def test_the_reference_is_every_labelled_stack_scored_out_of_fold_or_held_out(backend, app_data):
    with backend.factory.begin() as session:
        labelled = select(Prediction.vessel_id).join(CrowdAnswer, CrowdAnswer.vessel_id == Prediction.vessel_id)
        ids = session.scalars(labelled.order_by(Prediction.vessel_id)).all()
        session.execute(update(Prediction).where(Prediction.vessel_id.in_(ids[:50])).values(role="held_out", fold=None))
        session.execute(update(Prediction).where(Prediction.vessel_id.in_(ids[50:60])).values(role="new", fold=None))
        session.execute(update(CrowdAnswer).where(CrowdAnswer.vessel_id.in_(ids[60:100])).values(tier1=False))
    with backend.factory() as session:
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id)
    frame = reference.frame
    assert len(frame) == 190 and reference.left_out == 10 and frame["label"].isin([0, 1]).all()
    table = reference.composition().set_index(["role", "tier"])["stacks"]
    assert table.to_dict() == {("held_out", "tier 1"): 50, ("out_of_fold", "other"): 40,
                               ("out_of_fold", "tier 1"): 100}
    stalled = frame.groupby("role")["label"].sum()
    other = int(frame.loc[~frame["tier1"].astype(bool), "label"].sum())
    assert reference.describe() == (
        f"190 reference stacks ({int(frame['label'].sum())} stalled): 50 held_out ({stalled['held_out']} stalled), "
        f"140 out_of_fold ({stalled['out_of_fold']} stalled); other: 40 ({other} stalled), "
        f"tier 1: 150 ({int(frame['label'].sum()) - other} stalled); 10 labelled stacks scored as new left out")


def test_human_reviews_of_unlabelled_stacks_never_enter_the_reference(backend, app_data):
    with backend.factory.begin() as session:
        user, = add_plain_users(session, ["hal"])
        stack = queue.claim_next(session, user_id=user)
        queue.submit_review(session, user_id=user, vessel_id=stack.vessel_id, answer="stalled")
    with backend.factory() as session:
        frame = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    assert len(frame) == 200 and stack.filename not in set(frame["filename"])


def _known_answer_reviews(backend, answers: dict[str, list[int]]) -> None:
    """Known-answer reviews: each user answers the first labelled stacks as listed (1 stalled)."""
    with backend.factory.begin() as session:
        rows = session.execute(select(Stack.id, CrowdAnswer.label).join(CrowdAnswer)
                               .order_by(Stack.id)).all()
        users = add_plain_users(session, list(answers))
        for user, given in zip(users, answers.values()):
            for (vessel_id, _), answer in zip(rows, given):
                queue.submit_review(session, user_id=user, vessel_id=vessel_id,
                                    answer="stalled" if answer else "flowing")


def _truth(backend, n: int) -> list[int]:
    with backend.factory() as session:
        return session.scalars(select(CrowdAnswer.label).order_by(CrowdAnswer.vessel_id).limit(n)).all()


def test_without_known_answers_the_human_error_is_the_stated_prior(backend, app_data):
    with backend.factory() as session:
        assert tuning.known_answers_for(session, model_run_id=app_data.model_run_id) is None
        data = tuning.thresholds_data(session, model_run_id=app_data.model_run_id, sensitivity=0.9,
                                      specificity=0.9, confidence=0.8, promise="absolute")
    assert tuning.human_error_rates(None, t_low=0.3, t_high=0.7) == HumanErrorRates.prior()
    assert data.outcome.tuned.human_errors_ == HumanErrorRates.prior()
    assert tuning.describe_humans(data.outcome.tuned.report_, data.known).startswith(
        "no known-answer reviews yet: human error from the prior (miss rate 0.100")


def test_known_answer_reviews_set_the_human_error_rates(backend, app_data):
    truth = _truth(backend, 60)
    _known_answer_reviews(backend, {"good": truth, "bad": [0] * len(truth)})  # "bad" misses every stall
    run = app_data.model_run_id
    with backend.factory() as session:
        single = tuning.known_answers_for(session, model_run_id=run).rates(None, None)
        paired = tuning.known_answers_for(session, model_run_id=run, reviews_required=2).rates(None, None)
    stalls = sum(truth)
    assert single.miss.a == pytest.approx(HumanErrorRates.prior().miss.a + stalls)  # "bad" missed them all
    assert single.false_alarm.a == pytest.approx(HumanErrorRates.prior().false_alarm.a)
    assert "120 known answers by 2 reviewers" in single.basis and single.basis.endswith("from every score")
    assert "60 known answers" in paired.basis  # one skill-weighted label per stack answered by both
    assert paired.miss.mean < single.miss.mean
    _known_answer_reviews(backend, {"late": truth})
    with backend.factory() as session:
        again = tuning.known_answers_for(session, model_run_id=run, reviews_required=2).rates(None, None)
        assert again == paired  # only the first k answers of a stack count
        assert "60 known answers" in tuning.known_answers_for(session, model_run_id=run,
                                                              reviews_required=3).rates(None, None).basis


def test_a_policy_rests_on_the_known_answers_of_its_own_routed_band(backend, app_data):
    truth = _truth(backend, 200)
    _known_answer_reviews(backend, {"good": truth})
    with backend.factory() as session:
        known = tuning.known_answers_for(session, model_run_id=app_data.model_run_id)
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    inside = int(((known.score > 0.4) & (known.score < 0.6)).sum())
    band = tuning.human_error_rates(known, t_low=0.4, t_high=0.6)
    assert 0 < inside < 200 and f"{inside} known answers" in band.basis and band.basis.endswith("the routed band")
    assert tuning.human_error_rates(known, t_low=0.0, t_high=0.001) == HumanErrorRates.prior()  # none routed
    report = tuning.evaluate(reference, t_low=0.0, t_high=0.001, confidence=0.8, known=known, promise="absolute")
    assert tuning.describe_humans(report, known).startswith(
        "no known-answer reviews in this policy's routed band yet: human error from the prior")
    outcome = tuning.tune(reference, sensitivity=0.85, specificity=0.9, confidence=0.8, known=known,
                          promise="absolute")
    tuned = outcome.tuned
    own = tuning.human_error_rates(known, t_low=tuned.t_low_, t_high=tuned.t_high_)
    assert tuned.feasible_ and tuned.report_.sensitivity_lower >= 0.85 and tuned.report_.specificity_lower >= 0.9
    for rate in ("miss", "false_alarm"):  # the promise rests on rates no better than its own band shows
        assert getattr(tuned.human_errors_, rate).upper(0.9) >= getattr(own, rate).upper(0.9)


def test_tune_counts_human_error_and_the_bounds_say_so(backend, app_data):
    with backend.factory() as session:
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    outcome = tuning.tune(reference, sensitivity=0.8, specificity=0.8, confidence=0.8, known=None, promise="absolute")
    tuned = outcome.tuned
    assert tuned.report_.human_miss_upper > 0 and tuned.report_.human_false_alarm_upper > 0
    assert tuned.report_.sensitivity_lower >= 0.8 and tuned.report_.specificity_lower >= 0.8
    again = tuning.evaluate(reference, t_low=tuned.t_low_, t_high=tuned.t_high_, confidence=0.8, known=None,
                            promise="absolute")
    assert again == tuned.report_
    assert outcome.other.promise == "relative" and outcome.other.human_miss_upper == 0


def test_the_default_promise_is_relative_and_reports_the_absolute_reading_beside_it(backend, app_data):
    with backend.factory() as session:
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    outcome = tuning.tune(reference, sensitivity=0.9, specificity=0.9, confidence=0.8, known=None)
    report = outcome.tuned.report_
    assert outcome.promise == "relative" and report.human_miss_upper == 0 and report.human_false_alarm_upper == 0
    assert outcome.tuned.feasible_ and report.sensitivity_lower >= 0.9 and report.specificity_lower >= 0.9
    assert outcome.other == tuning.evaluate(reference, t_low=report.t_low, t_high=report.t_high, confidence=0.8,
                                            known=None, promise="absolute")
    assert outcome.other.sensitivity_lower < report.sensitivity_lower  # the prior's human misses count there
    assert "routed stacks keep the human answer" in tuning.describe_humans(report, None)


def test_a_stated_human_assumption_is_named_and_used(backend, app_data):
    with backend.factory() as session:
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    assumed = tuning.assumed_humans(0.98, 0.97)
    outcome = tuning.tune(reference, sensitivity=0.8, specificity=0.8, confidence=0.8, known=None,
                          promise="absolute", assumed=assumed)
    report = outcome.tuned.report_
    assert report.human_basis.startswith("assumed (stated, not measured)")
    assert report.human_miss_rate == pytest.approx(0.02) and report.human_miss_upper == pytest.approx(0.02, abs=1e-3)
    with pytest.raises(ValueError, match="human sensitivity"):
        tuning.assumed_humans(1.5, 0.9)


def test_saving_thresholds_reroutes_the_queue_and_stores_none_as_null(backend, app_data):
    admin = _admin(backend)
    with backend.factory() as session:
        assert queue.queue_stats(session).routed_to_humans == 20
    policy_id = services.activate_thresholds(backend, admin, model_run_id=app_data.model_run_id, t_low=None,
                                             t_high=0.6, reviews_required=1, sensitivity=0.9, specificity=0.9,
                                             confidence=0.8)
    with backend.factory() as session:
        policy = active_policy(session)
        stacks = session.execute(select(Prediction.probability, Stack.project_id).join(Stack)
                                 .where(Stack.split == "test")).all()
        high_open = project_status(session).set_index("project_id")["high_open"]
        routed = queue.queue_stats(session).routed_to_humans
        events = [(e.actor, e.action) for e in recent_events(session, entity="triage_policy")]
    assert (policy.id, policy.t_low, policy.t_high) == (policy_id, None, 0.6)
    # t_high decides only the stacks of the projects whose own answers validate it (the project gate;
    # tests/db/test_project_gate.py has a project it holds back)
    assert high_open.any()
    assert routed == sum(p < 0.6 or not high_open[project] for p, project in stacks) < 20
    assert (ADMIN[0], "policy.activate") in events
    with pytest.raises(Exception, match="t_low must be below t_high"):
        services.activate_thresholds(backend, admin, model_run_id=app_data.model_run_id, t_low=0.7, t_high=0.6,
                                     reviews_required=1, sensitivity=0.9, specificity=0.9, confidence=0.8)


def test_project_breakdown_adds_up_to_the_whole(backend, app_data):
    with backend.factory() as session:
        reference = tuning.tuning_reference(session, model_run_id=app_data.model_run_id).frame
    table = tuning.project_breakdown(reference, t_low=0.3, t_high=0.7, confidence=0.9, known=None)
    whole = tuning.evaluate(reference, t_low=0.3, t_high=0.7, confidence=0.9, known=None)
    assert table["stacks"].sum() == len(reference) and table["misses"].sum() == whole.misses
    assert table["false_alarms"].sum() == whole.false_alarms
    assert (table["sensitivity_lower"] <= table["sensitivity"]).all()


def test_queue_preview_counts_and_hours():
    probabilities = np.array([0.0, 0.1, 0.5, 0.6, 0.95, 1.0])
    preview = tuning.queue_preview(probabilities, current=None, proposed=(0.1, 0.9), seconds_per_review=36)
    assert preview["current"].tolist() == [0, 0, 6, 6 * 36 / 3600]
    assert preview["proposed"].tolist() == [2, 2, 2, 2 * 36 / 3600]
    assert preview.loc["to humans", "change"] == -4
    assert tuning.queue_preview(probabilities, current=None, proposed=(None, 0.9))["proposed"].tolist()[:3] == [0, 2, 4]


def test_the_known_answer_rate_is_set_by_an_admin_and_shown(backend, app_data):
    services.set_known_answer_rate(backend, _admin(backend), rate=0.2)
    with backend.factory() as session:
        data = tuning.thresholds_data(session, model_run_id=app_data.model_run_id, sensitivity=0.9,
                                      specificity=0.9, confidence=0.8)
        event = recent_events(session, entity="app_setting")[0]
    assert data.known_answer_rate == 0.2 and (event.actor, event.details["to"]) == (ADMIN[0], 0.2)


def test_reviewer_skill_rests_on_the_known_answers(backend, app_data):
    truth = _truth(backend, 40)
    _known_answer_reviews(backend, {"good": truth, "bad": [1 - t for t in truth]})
    skill = services.dashboard_data(backend)["skill"].set_index("user")
    assert list(skill.columns) == services.SKILL_COLUMNS[1:]
    assert (skill["n_known_stalled"] + skill["n_known_flowing"] == 40).all()
    assert skill.loc["good", "sensitivity_mean"] > 0.85 > skill.loc["bad", "sensitivity_mean"]
    assert skill.loc["good", "specificity_low"] > skill.loc["bad", "specificity_high"]
    with backend.factory() as session:
        assert session.query(Review).filter(Review.known_answer.is_(True)).count() == 80
