"""core.policy.guarantee: human error measured on the known answers of the policy's own routed band."""

import warnings

import numpy as np
import pytest

from core.labels.skill import HumanErrorRates
from core.policy.combined_bound import HUMAN_ALPHA_SHARE
from core.policy.guarantee import KnownAnswers, tune_with_known_answers
from core.policy.relative import side_confidence
from core.policy.triage import TriageWarning, evaluate_policy


def _lab(seed: int, n: int = 6000):
    """Binormal scores; humans err 10x more often on stacks scored 0.2-0.8 (the hard ones)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    p = 1 / (1 + np.exp(-(np.where(y == 1, 1.0, -2.0) + rng.normal(0, 1.2, n))))
    hard = (p > 0.2) & (p < 0.8)
    wrong = rng.random(n) < np.where(hard, 0.05, 0.005)
    return y, p, np.where(wrong, 1 - y, y)


def test_rates_come_from_the_band_only():
    y, p, label = _lab(0)
    known = KnownAnswers(score=p, label=label, truth=y, reviewers=np.arange(len(y)) % 4)
    everywhere = known.rates(None, None)
    band = known.rates(0.2, 0.8)
    assert band.false_alarm.mean > 2 * everywhere.false_alarm.mean
    assert band.basis.endswith("from the routed band") and "by 4 reviewers" in band.basis
    assert everywhere.basis.endswith("from every score")
    inside = (p > 0.2) & (p < 0.8)
    prior = HumanErrorRates.prior()
    assert band.miss.a == prior.miss.a + int(((label == 0) & (y == 1) & inside).sum())
    assert band.miss.a + band.miss.b == prior.miss.a + prior.miss.b + int((inside & (y == 1)).sum())


def test_no_known_answer_in_the_band_falls_back_to_the_prior():
    known = KnownAnswers(score=np.array([0.05, 0.95]), label=np.array([0, 1]), truth=np.array([0, 1]))
    assert known.rates(0.1, 0.9) == HumanErrorRates.prior()


@pytest.mark.parametrize("targets, reachable", [((0.95, 0.95), True), ((0.9, 0.9), True), ((0.99, 0.99), False)])
def test_the_promise_rests_on_rates_no_better_than_its_own_bands(targets, reachable):
    y, p, _ = _lab(1)
    ky, kp, klabel = _lab(2)
    known = KnownAnswers(score=kp, label=klabel, truth=ky)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TriageWarning)
        tuned = tune_with_known_answers(p, y, known, sensitivity=targets[0], specificity=targets[1], confidence=0.9)
    level = 1 - (1 - side_confidence(0.9)) * HUMAN_ALPHA_SHARE
    own = known.rates(tuned.t_low_, tuned.t_high_)
    used = tuned.human_errors_
    assert used.miss.upper(level) >= own.miss.upper(level)
    assert used.false_alarm.upper(level) >= own.false_alarm.upper(level)
    assert tuned.report_ == evaluate_policy(p, y, tuned.t_low_, tuned.t_high_, human_errors=used, confidence=0.9)
    honest = evaluate_policy(p, y, tuned.t_low_, tuned.t_high_, human_errors=own, confidence=0.9)
    assert honest.sensitivity_lower >= tuned.report_.sensitivity_lower
    assert honest.specificity_lower >= tuned.report_.specificity_lower
    meets = tuned.report_.sensitivity_lower >= targets[0] and tuned.report_.specificity_lower >= targets[1]
    assert tuned.feasible_ == meets == reachable
    assert tuned.t_low_ is not None and tuned.t_high_ is not None  # decided or proposed: a band narrower than all
    assert used != known.rates(None, None)  # so the rates come from harder stacks than every score's


def test_known_answers_must_align():
    with pytest.raises(ValueError, match="differ in length"):
        KnownAnswers(score=np.array([0.1, 0.2]), label=np.array([0]), truth=np.array([0, 1]))
