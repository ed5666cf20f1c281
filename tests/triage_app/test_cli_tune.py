"""`stalltriage tune` on a prepared database: prints the policy and bounds, saves it, audits it."""

from __future__ import annotations

from db.audit import recent_events
from db.engine import make_engine, make_session_factory
from db.policy import active_policy
from triage_app.cli import main


def _policy_and_events(url: str):
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        policy = active_policy(session)
        events = [(e.actor, e.action) for e in recent_events(session, entity="triage_policy")]
        result = (None if policy is None else (policy.t_low, policy.t_high, policy.target_sensitivity,
                                               policy.confidence, policy.created_by)), events
    engine.dispose()
    return result


def test_tune_saves_the_active_policy(app_data, capsys):
    url = app_data.settings.db_url
    code = main(["tune", "--db", url, "--sensitivity", "0.85", "--specificity", "0.9", "--confidence", "0.8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert ("reference: 200 reference stacks (53 stalled): 200 out_of_fold (53 stalled); "
            "tier 1: 200 (53 stalled)\n") in out
    assert "humans: no known-answer reviews yet: human error from the prior (miss rate 0.100" in out
    assert "automatic:" in out and "lower bound" in out and "stalls routed to humans" in out
    assert "saved as the active policy" in out
    policy, events = _policy_and_events(url)
    assert policy[2:] == (0.85, 0.8, "cli") and 0 < policy[0] < policy[1] < 1
    assert ("cli", "policy.activate") in events and ("cli", "policy.save") in events


def test_too_few_stalls_for_the_default_targets(app_data, capsys):
    code = main(["tune", "--db", app_data.settings.db_url])
    out = capsys.readouterr().out
    assert code == 1
    assert "warning: the reference set holds only" in out and "at least 299 are needed" in out
    assert "the active policy is unchanged" in out
    assert _policy_and_events(app_data.settings.db_url) == (None, [])


def test_dry_run_and_unknown_run(app_data, capsys):
    url = app_data.settings.db_url
    assert main(["tune", "--db", url, "--sensitivity", "0.85", "--specificity", "0.9", "--confidence", "0.8",
                 "--dry-run"]) == 0
    assert "policy: t_low" in capsys.readouterr().out
    assert _policy_and_events(url) == (None, [])
    assert main(["tune", "--db", url, "--model-run", "99"]) == 1
    assert "no model run with id 99" in capsys.readouterr().out


def test_tune_says_what_the_human_error_rests_on_once_there_are_known_answers(app_data, capsys):
    from sqlalchemy import select

    from db.models import CrowdAnswer
    from db.queue import submit_review
    from tests.db.helpers import add_plain_users

    url = app_data.settings.db_url
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        rita, = add_plain_users(session, ["known"])
        for vessel_id, label in session.execute(select(CrowdAnswer.vessel_id, CrowdAnswer.label)).all():
            submit_review(session, user_id=rita, vessel_id=vessel_id, answer="stalled" if label else "flowing")
    engine.dispose()
    assert main(["tune", "--db", url, "--sensitivity", "0.85", "--specificity", "0.9", "--confidence", "0.8",
                 "--dry-run"]) == 0
    humans = [line for line in capsys.readouterr().out.splitlines() if line.startswith("humans: ")]
    # the tuned policy routes a narrow band that holds none of the known answers: the prior, and it says why
    assert humans == ["humans: no known-answer reviews in this policy's routed band yet: human error from the "
                      "prior (miss rate 0.100 (bound 0.226), false-alarm rate 0.050 (bound 0.114))"]
