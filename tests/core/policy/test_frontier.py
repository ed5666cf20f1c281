"""core.policy.frontier and core.policy.transfer: the frontier against brute force, the closest policy, what more
data buys, and the stall-share check."""

import itertools

import numpy as np
import pytest

from core.labels.skill import HumanErrorRates
from core.policy.frontier import closest_policy, frontier, more_data, pair_table
from core.policy.label_shift import ShareEstimate
from core.policy.transfer import check_share
from core.policy.triage import evaluate_policy, human_standard


def _reference(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return np.clip(np.round(0.4 * y + rng.normal(0.3, 0.15, n), 2), 0, 1), y


@pytest.mark.parametrize("promise, humans", [("relative", human_standard()), ("absolute", HumanErrorRates.prior())])
def test_pair_rows_agree_with_evaluate_policy(promise, humans):
    p, y = _reference()
    table = pair_table(p, y, human_errors=humans, confidence=0.9, promise=promise)
    for row in table.sample(25, random_state=1).itertuples():
        t_low = None if np.isnan(row.t_low) else row.t_low
        t_high = None if np.isnan(row.t_high) else row.t_high
        report = evaluate_policy(p, y, t_low, t_high, human_errors=humans, confidence=0.9, promise=promise)
        assert (row.auto_share, row.sensitivity_lower, row.specificity_lower) == pytest.approx(
            (report.auto_share, report.sensitivity_lower, report.specificity_lower))


def test_the_frontier_is_the_best_worse_margin_at_each_share():
    p, y = _reference(2)
    table = pair_table(p, y, human_errors=HumanErrorRates.prior(), confidence=0.95, promise="absolute")
    front = frontier(table, sensitivity=0.99, specificity=0.95)
    margin = np.minimum(table["sensitivity_lower"] - 0.99, table["specificity_lower"] - 0.95)
    for row in front.itertuples():
        best = margin[table["auto_share"] >= row.share - 1e-12].max()
        assert min(row.sensitivity_lower - 0.99, row.specificity_lower - 0.95) == pytest.approx(best)
        assert row.auto_share >= row.share - 1e-12
    assert (np.diff(np.minimum(front["sensitivity_lower"] - 0.99, front["specificity_lower"] - 0.95)) <= 1e-12).all()


def test_the_closest_policy_is_not_dominated():
    p, y = _reference(3)
    table = pair_table(p, y, human_errors=HumanErrorRates.prior(), confidence=0.95, promise="absolute")
    best = closest_policy(table, sensitivity=0.99, specificity=0.95)
    columns = ["auto_share", "sensitivity_lower", "specificity_lower"]
    for other in table[columns].to_numpy():
        assert not ((other >= best[columns].to_numpy() - 1e-12).all() and (other > best[columns].to_numpy() + 1e-12).any())


def test_more_data_never_buys_less():
    p, y = _reference(4, n=1500)
    more = more_data(p, y, sensitivity=0.99, specificity=0.95, confidence=0.95)
    assert list(more["scale"]) == [1.0, 2.0, 4.0, 10.0]
    assert (np.diff(more["auto_share"]) >= 0).all() and more["auto_share"].iloc[-1] > more["auto_share"].iloc[0]
    assert more["stalled"].iloc[1] == 2 * int(y.sum())


def _estimate(share: float, low: float, high: float, reference: float = 0.2) -> ShareEstimate:
    return ShareEstimate(share=share, low=low, high=high, reference_share=reference, n_new=2000, method="test")


def test_the_share_check_rereads_only_the_relative_promise_and_only_when_shares_differ():
    same = check_share(promise="relative", sensitivity_lower=0.992, specificity_lower=0.96,
                       estimate=_estimate(0.19, 0.15, 0.23), sensitivity=0.99, specificity=0.95)
    assert same.matches and same.holds and same.sensitivity_lower == 0.992
    lower = check_share(promise="relative", sensitivity_lower=0.992, specificity_lower=0.96,
                        estimate=_estimate(0.05, 0.04, 0.06), sensitivity=0.99, specificity=0.95)
    assert not lower.matches and not lower.holds and lower.sensitivity_lower < 0.97
    assert "DOES NOT carry over" in lower.describe()
    absolute = check_share(promise="absolute", sensitivity_lower=0.992, specificity_lower=0.96,
                           estimate=_estimate(0.05, 0.04, 0.06), sensitivity=0.99, specificity=0.95)
    assert absolute.holds and absolute.sensitivity_lower == 0.992 and "per true class" in absolute.describe()
    untouched = check_share(promise="relative", sensitivity_lower=1.0, specificity_lower=1.0,
                            estimate=_estimate(0.05, 0.04, 0.06), sensitivity=0.99, specificity=0.95)
    assert untouched.holds  # a policy that changes no answer changes none at any share
