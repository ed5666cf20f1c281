"""core.gate: a project below, at and above its requirement, against scipy's binomial test as the
oracle; sides the policy switches off; projects without answers; one bad project among good ones."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from core.gate import answers_needed, gate_projects, side_gate

LEVEL = 0.975  # each side's confidence when both together are at 0.95


def _answers(project: str, stalled: np.ndarray, flowing: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"project": project, "probability": np.concatenate([stalled, flowing]),
                         "answer": [1] * len(stalled) + [0] * len(flowing)})


def _passes(changed: int, n: int, max_rate: float) -> bool:
    """The oracle: the exact binomial test rejects 'more than max_rate changed' at the side's level."""
    return bool(binomtest(changed, n, max_rate, alternative="less").pvalue <= 1 - LEVEL)


@pytest.mark.parametrize("n_stalled, opens", [(367, False), (368, True), (500, True)])
def test_the_low_side_opens_at_the_zero_failure_size(n_stalled, opens):
    """0.99 at 97.5 % per side needs 368 unchanged "stalled" answers: below, at and above it."""
    frame = _answers("a", np.full(n_stalled, 0.6), np.full(200, 0.01))
    gate, = gate_projects(frame, t_low=0.05, t_high=None, sensitivity=0.99, specificity=0.95, confidence=0.95)
    assert gate.low_open is opens is _passes(0, n_stalled, 0.01)
    assert gate.status == ("validated" if opens else "gated")
    assert gate.low.needed == (0 if opens else 368 - n_stalled)
    assert gate.high is None and not gate.high_open  # t_high decides nothing: nothing to open
    if not opens:
        assert gate.stacks_needed == int(np.ceil(gate.low.needed / (n_stalled / (n_stalled + 200))))
        assert 'needs 1 more "stalled" answers' in gate.reason()


@pytest.mark.parametrize("changed", [1, 3, 8])
def test_answers_still_needed_is_the_first_count_the_binomial_test_accepts(changed):
    n = 100
    needed = answers_needed(changed, n, max_rate=0.05, confidence=LEVEL)
    assert _passes(changed, n + needed, 0.05)
    assert needed == 0 or not _passes(changed, n + needed - 1, 0.05)


@pytest.mark.parametrize("seed", range(5))
def test_a_side_is_open_exactly_when_the_binomial_test_rejects(seed):
    rng = np.random.default_rng(seed)
    flowing = rng.beta(2, 8, int(rng.integers(50, 400)))
    gate = side_gate(flowing, np.zeros(len(flowing), int), side="high", threshold=0.5, max_rate=0.05,
                     confidence=LEVEL)
    assert gate.changed == int((flowing >= 0.5).sum())
    assert gate.open is _passes(gate.changed, len(flowing), 0.05)


def test_one_project_the_model_does_not_know_stays_gated_among_validated_ones():
    rng = np.random.default_rng(1)
    good = [_answers(name, rng.uniform(0.3, 1.0, 400), rng.uniform(0.0, 0.6, 600)) for name in ("a", "b")]
    unknown = _answers("c", rng.uniform(0.0, 1.0, 400), rng.uniform(0.0, 1.0, 600))  # stalls scored anywhere
    frame = pd.concat([*good, unknown], ignore_index=True)
    gates = gate_projects(frame, t_low=0.1, t_high=0.9, sensitivity=0.99, specificity=0.95, confidence=0.95,
                          projects=["a", "b", "c", "new"])
    by_name = {gate.project: gate for gate in gates}
    assert [by_name[name].status for name in ("a", "b", "c", "new")] == ["validated", "validated", "gated", "gated"]
    assert not by_name["c"].low_open and by_name["c"].low.changed > 0
    assert by_name["c"].high_open is _passes(by_name["c"].high.changed, 600, 0.05)
    new = by_name["new"]
    assert (new.answered, new.low.needed, new.high.needed) == (0, 368, 72)
    share = frame["answer"].mean()  # no answers of its own: the pooled share turns answers into stacks
    assert new.stacks_needed == int(np.ceil(max(368 / share, 72 / (1 - share))))
    assert "no answers yet" in new.reason()


def test_a_project_that_breaks_the_promise_opens_at_most_at_the_sides_error_rate():
    """40,000 projects whose true change rate is exactly the allowed 5 %: a side opens for at most
    2.5 % of them (its share of 5 %), allowing three Monte-Carlo standard errors."""
    trials, n = 40_000, 300
    changed, count = np.unique(np.random.default_rng(0).binomial(n, 0.05, trials), return_counts=True)
    opened = sum(m for k, m in zip(changed, count)
                 if side_gate(np.r_[np.ones(k), np.zeros(n - k)], np.zeros(n, int), side="high", threshold=0.5,
                              max_rate=0.05, confidence=LEVEL).open)
    assert 0 < opened / trials <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / trials)
