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
                                               policy.confidence, policy.created_by, policy.promise,
                                               policy.stall_share)), events
    engine.dispose()
    return result


def test_tune_saves_the_active_policy(app_data, capsys):
    url = app_data.settings.db_url
    code = main(["tune", "--db", url, "--sensitivity", "0.85", "--specificity", "0.9", "--confidence", "0.8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert ("reference: 200 reference stacks (53 stalled): 200 out_of_fold (53 stalled); "
            "tier 1: 200 (53 stalled)\n") in out
    assert ('promise: Relative to the human standard: the automatic decisions change at most 15% of the human '
            '"stalled" answers and at most 10% of the human "flowing" answers (80% confidence for both sides '
            'together).\n') in out
    assert "humans (absolute reading): no known-answer reviews yet: human error from the prior (miss rate 0.100" in out
    assert "relative reading (the promise): sensitivity >= 0.8" in out and "absolute reading (beside it)" in out
    assert "frontier (the best bounds" in out and "what a larger reference would buy" in out
    assert "saved as the active policy" in out
    policy, events = _policy_and_events(url)
    assert policy[2:] == (0.85, 0.8, "cli", "relative", 53 / 200) and 0 < policy[0] < policy[1] < 1
    assert ("cli", "policy.activate") in events and ("cli", "policy.save") in events


def test_defaults_save_a_policy_even_with_too_few_stalls_for_one_side(app_data, capsys):
    """53 stalls cannot show 0.99 at 97.5 %: the flowing side stays off, the stalled side still decides."""
    code = main(["tune", "--db", app_data.settings.db_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "warning: the reference set holds only 53 stalled stacks" in out and "at least 368 are needed" in out
    policy, _ = _policy_and_events(app_data.settings.db_url)
    assert policy[0] is None and policy[1] is not None and policy[5] == "relative"


def test_an_absolute_shortfall_is_named_and_needs_confirmation(app_data, capsys):
    url = app_data.settings.db_url
    assert main(["tune", "--db", url, "--promise", "absolute"]) == 1
    out = capsys.readouterr().out
    assert "closest in reach" in out and "not saved: sensitivity bound" in out and "< target 0.99" in out
    assert _policy_and_events(url) == (None, [])
    assert main(["tune", "--db", url, "--promise", "absolute", "--accept-shortfall"]) == 0
    assert "despite the shortfall (sensitivity bound" in capsys.readouterr().out
    policy, _ = _policy_and_events(url)
    assert policy[5] == "absolute"


def test_a_stated_human_assumption_is_shown_as_assumed(app_data, capsys):
    assert main(["tune", "--db", app_data.settings.db_url, "--promise", "absolute", "--human-sensitivity", "0.99",
                 "--human-specificity", "0.98", "--sensitivity", "0.8", "--specificity", "0.8", "--dry-run"]) == 0
    assert "humans (absolute reading): human error from assumed (stated, not measured)" in capsys.readouterr().out


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
                 "--promise", "absolute", "--dry-run"]) == 0
    humans = [line for line in capsys.readouterr().out.splitlines() if line.startswith("humans")]
    # the rates come from the known answers inside the tuned policy's own routed band, and it says so
    assert len(humans) == 1 and humans[0].startswith("humans (absolute reading): human error from 4 known answers by "
                                                     "1 reviewers (2 stalled, 2 flowing) updating the prior, from the "
                                                     "routed band: miss rate 0.083")
