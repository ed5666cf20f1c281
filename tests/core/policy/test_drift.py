"""core.policy.drift: constructed shifted and unshifted stacks; a pure change of the stall share is not drift;
Bonferroni keeps the false alarms of unshifted checks rare; too few stacks are not tested."""

import numpy as np
import pandas as pd
import pytest

from core.policy.drift import ALPHA, drift_tests, drifted_projects


def _stacks(rng: np.random.Generator, n: int, *, project: str = "a", stall_share: float = 0.2,
            score_shift: float = 0.0, depth: float = 60.0) -> pd.DataFrame:
    answer = (rng.random(n) < stall_share).astype(int)
    scores = np.where(answer == 1, rng.beta(8, 2, n), rng.beta(2, 8, n))
    return pd.DataFrame({"project": project, "answer": answer, "probability": np.clip(scores + score_shift, 0, 1),
                         "depth": rng.normal(depth, 15, n).round(), "roi_area": rng.lognormal(8.4, 0.3, n)})


@pytest.mark.parametrize("seed", range(3))
def test_unshifted_stacks_do_not_drift(seed):
    rng = np.random.default_rng(seed)
    reference = pd.concat([_stacks(rng, 1500, project=p) for p in "abc"], ignore_index=True)
    current = pd.concat([_stacks(rng, 3000, project=p) for p in "abc"], ignore_index=True)
    tests = drift_tests(reference, current)
    assert len(tests) == 9 and (tests["against"] == "project").all() and tests["statistic"].notna().all()
    assert not tests["drifted"].any() and drifted_projects(tests) == {}
    assert tests["threshold_p"].iloc[0] == pytest.approx(ALPHA / 9)


def test_a_shifted_score_or_depth_drifts_only_that_project_and_feature():
    rng = np.random.default_rng(5)
    reference = pd.concat([_stacks(rng, 1000, project=p) for p in "abc"], ignore_index=True)
    current = pd.concat([_stacks(rng, 1000, project="a"), _stacks(rng, 1000, project="b", score_shift=0.3),
                         _stacks(rng, 1000, project="c", depth=90)], ignore_index=True)
    tests = drift_tests(reference, current).set_index(["project", "feature"])
    assert tests["drifted"][tests["drifted"]].index.tolist() == [("b", "probability"), ("c", "depth")]
    alarms = drifted_projects(tests.reset_index())
    assert set(alarms) == {"b", "c"} and alarms["b"].startswith("drifted: probability: D=")


def test_fewer_stalls_among_the_new_stacks_is_not_drift():
    """Label shift from the reference's enriched 20 % to 3 % moves the score distribution by at most
    0.17, below the score's effect threshold 0.1 + 0.2; a real shift of that size would alarm."""
    rng = np.random.default_rng(2)
    reference = _stacks(rng, 3000, stall_share=0.2)
    tests = drift_tests(reference, _stacks(rng, 5000, stall_share=0.03)).set_index("feature")
    assert tests.loc["probability", "pvalue"] < tests.loc["probability", "threshold_p"]  # significant ...
    assert not tests["drifted"].any()  # ... but no larger than a change of the stall share explains
    assert drift_tests(reference, _stacks(rng, 5000, stall_share=0.03, score_shift=0.25))["drifted"].iloc[0]


def test_false_alarms_are_rare_over_many_unshifted_checks():
    rng = np.random.default_rng(11)
    alarms = sum(drift_tests(_stacks(rng, 200), _stacks(rng, 200))["drifted"].any() for _ in range(200))
    assert alarms <= 2  # at most 0.1 % per check by construction; 2 of 200 is far beyond that


def test_a_project_without_its_own_reference_is_compared_with_the_pool_and_small_samples_are_not_tested():
    rng = np.random.default_rng(3)
    reference = pd.concat([_stacks(rng, 500, project="a"), _stacks(rng, 10, project="b")], ignore_index=True)
    current = pd.concat([_stacks(rng, 300, project="b"), _stacks(rng, 5, project="c")], ignore_index=True)
    tests = drift_tests(reference, current).set_index(["project", "feature"])
    assert (tests.loc["b", "against"] == "pooled").all() and (tests.loc["b", "n_reference"] == 510).all()
    assert tests.loc["c", "statistic"].isna().all() and not tests["drifted"].any()
    assert tests["threshold_p"].iloc[0] == pytest.approx(ALPHA / 3)  # only b's three features were tested


def test_no_current_stacks_means_no_tests_and_no_alarm():
    rng = np.random.default_rng(4)
    tests = drift_tests(_stacks(rng, 100), _stacks(rng, 100).iloc[0:0])
    assert tests.empty and drifted_projects(tests) == {}
