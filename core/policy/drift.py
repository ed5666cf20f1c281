"""The drift alarm: do a project's stacks still look like the reference its promise rests on?

Why: the promise is measured on reference stacks and applied to new ones. A project imaged with
another gain, at another depth or with another outline style can move the model's scores (and the
stacks' simple statistics) away from the reference's, and a pooled policy would go on deciding
its stacks with thresholds that mean something else there. The gate (:mod:`core.policy.gate`) checks a
project once; this check notices when its stacks change afterwards.

**The test.** For each project, each feature (the model's score ``probability``, the stack's
``depth`` in frames and its ``roi_area``, the outlined region's box in pixels: what the database
records for every stack) is compared between the project's **current** stacks (those the policy
decides: no human answer; optionally only those ingested after the policy was tuned) and its
**reference** stacks (its own human-answered stacks with reference scores when it has at least
:data:`MIN_STACKS`, else the pooled reference of every project) with scipy's two-sample
Kolmogorov–Smirnov test (:func:`scipy.stats.ks_2samp`). A feature has drifted when both

* its p-value is below :data:`ALPHA` divided by the number of tests of the check (Bonferroni over
  every project and feature, so a check raises a false alarm with probability at most 0.001), and
* its KS statistic ``D`` (the largest gap between the two empirical distribution functions) is at
  least :data:`MIN_EFFECT` (0.1): with thousands of stacks a tiny, harmless shift is
  "significant"; the effect size keeps the alarm for shifts that matter. For the score the gap a
  pure change of the stall share can explain is added: under label shift the score distribution
  moves by ``|share_new - share_ref| * sup|F_stalled - F_flowing|``, at most the reference's stall
  share when the new stacks hold fewer stalls (references are enriched for stalls), so a
  score drift must exceed ``MIN_EFFECT + reference stall share``.

A project with a drifted feature is **drifted**: both of its sides stop deciding (its stacks go
to humans) until a new tune re-validates it on answers that include its new stacks. Features with
fewer than :data:`MIN_STACKS` values on either side are not tested (and say so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

ALPHA = 0.001
"""Family-wise false-alarm rate of one drift check (Bonferroni over its tests)."""
MIN_EFFECT = 0.1
"""Smallest KS statistic that counts as drift (plus the reference's stall share for the score)."""
MIN_STACKS = 20
"""Fewest values on each side for a feature to be tested."""
FEATURES = ("probability", "depth", "roi_area")
"""What is compared: the model's score, the stack's depth (frames) and the outlined box's area (pixels)."""


COLUMNS = ("project", "feature", "against", "n_reference", "n_current", "statistic", "pvalue", "min_effect",
           "threshold_p", "drifted")
"""One row per project and feature: the reference compared with (``project``: its own, ``pooled``:
every project's), the two samples' sizes, the KS statistic and p-value (NaN when not tested), the
effect the statistic must reach, the Bonferroni-corrected level, and whether it drifted."""


def drift_tests(reference: pd.DataFrame, current: pd.DataFrame, *, alpha: float = ALPHA,
                min_effect: float = MIN_EFFECT, min_stacks: int = MIN_STACKS) -> pd.DataFrame:
    """Test every project's current stacks against its reference (module docstring for the rule).

    Parameters
    ----------
    reference
        The reference stacks: ``project``, ``answer`` (1 stalled, 0 flowing; sets the stall share
        for the score's effect threshold) and the :data:`FEATURES` columns (NaN where unknown).
    current
        The stacks the policy decides: ``project`` and the :data:`FEATURES` columns.
    alpha, min_effect, min_stacks
        The family-wise false-alarm rate, the smallest KS statistic that counts, the fewest values
        per side.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per project and feature.
    """
    own = dict(tuple(reference.groupby("project", sort=False)))
    planned = []
    for project, stacks in current.groupby("project", sort=True):
        base = own.get(project)
        against = "project" if base is not None and len(base) >= min_stacks else "pooled"
        base = base if against == "project" else reference
        share = float(base["answer"].mean()) if len(base) else 0.0
        for feature in FEATURES:
            ref_values = base[feature].dropna().to_numpy(float)
            cur_values = stacks[feature].dropna().to_numpy(float)
            effect = min_effect + (share if feature == "probability" else 0.0)
            planned.append((project, feature, against, ref_values, cur_values, effect))
    tested = [len(r) >= min_stacks and len(c) >= min_stacks for _, _, _, r, c, _ in planned]
    level = alpha / max(sum(tested), 1)
    rows = []
    for (project, feature, against, ref_values, cur_values, effect), run in zip(planned, tested):
        statistic = pvalue = np.nan
        if run:
            result = ks_2samp(cur_values, ref_values)
            statistic, pvalue = float(result.statistic), float(result.pvalue)
        drifted = bool(run and pvalue < level and statistic >= effect)
        rows.append((project, feature, against, len(ref_values), len(cur_values), statistic, pvalue, effect, level,
                     drifted))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def describe(row: dict) -> str:
    """One test in words: ``"probability: D=0.41 (needs 0.30), p=2e-15"``, or why it was not tested."""
    if np.isnan(row["statistic"]):
        return f"{row['feature']}: not tested ({row['n_current']} current, {row['n_reference']} reference values)"
    return f"{row['feature']}: D={row['statistic']:.2f} (needs {row['min_effect']:.2f}), p={row['pvalue']:.2g}"


def drifted_projects(tests: pd.DataFrame) -> dict[str, str]:
    """Project → one line naming its drifted features and the level they passed (drifted projects only)."""
    drifted = tests[tests["drifted"].astype(bool)]  # an empty object column would select columns
    return {project: "drifted: " + "; ".join(describe(row) for row in group.to_dict("records"))
            + f" (p < {group['threshold_p'].iloc[0]:.2g} after Bonferroni, against the {group['against'].iloc[0]} "
              f"reference)"
            for project, group in drifted.groupby("project", sort=True)}
