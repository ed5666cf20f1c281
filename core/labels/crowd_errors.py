"""Likely crowd errors: labelled stacks whose out-of-fold score contradicts a narrow crowd vote.

The crowd is wrong on a few percent of stacks, most often on the ones it split over. Those
wrong answers are taught to the model as truth and judge it as truth. A stack is flagged when

1. cleanlab's ``find_label_issues`` (confident learning: Northcutt, Jiang & Chuang 2021,
   "Confident learning: estimating uncertainty in dataset labels", JAIR 70) finds its answer an
   issue on the out-of-fold probabilities, with the rule ``filter_by`` names. The default,
   ``predicted_neq_given``, flags an answer the model gives less than half its probability
   (the paper's argmax baseline). ``prune_by_noise_rate``, cleanlab's own default, estimates
   from per-class confidence thresholds how many answers of each kind belong to the other class
   and prunes only that many, least self-confident first. Measured on the realistic profile
   (``bench.crowd_errors``, ``docs/benchmarks.md``) the crowd's errors sit on hard stacks that
   the model too scores near the middle, so pruning found half as many of them at no better
   precision; with a model that separates the classes cleanly it is the more precise one; and
2. the crowd's answer had a **low margin**: ``|2 * crowd_score - 1| <= max_margin`` (a vote of
   ``crowd_score`` 0.3 has margin 0.4). A near-unanimous crowd is left alone, whatever the model
   says: there the model is more likely wrong than the crowd. Stacks without a crowd score have
   no margin to judge and stay eligible.

The probabilities must be out-of-fold (scored by members that never trained on the stack), or
the model has already memorised the crowd's answers and confirms them. The flagged stacks are
for an admin's second look, ranked by how little probability the model gives the crowd's answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# pandas and NumPy are imported inside the functions: the command's parser needs only FILTERS, and
# `stalltriage crowd-errors --help` should not wait the second pandas takes to import.

DEFAULT_MAX_MARGIN = 0.6
"""Crowd votes up to 80 % : 20 % count as low-margin (``crowd_score`` from 0.2 to 0.8)."""
FILTERS = ("predicted_neq_given", "prune_by_noise_rate", "low_self_confidence")
"""cleanlab's ``filter_by`` rules offered: the default, confident learning's pruning, the strictest."""
COLUMNS = ["filename", "label", "crowd_score", "tier1", "probability", "label_quality", "margin", "reason"]


def crowd_margin(crowd_score: pd.Series) -> pd.Series:
    """How decisive each crowd vote was: 0 for a tie, 1 for a unanimous vote (NaN without a score)."""
    import pandas as pd

    return (2 * pd.to_numeric(crowd_score, errors="coerce") - 1).abs()


def find_crowd_errors(stacks: pd.DataFrame, *, max_margin: float = DEFAULT_MAX_MARGIN,
                      filter_by: str = FILTERS[0]) -> pd.DataFrame:
    """The labelled stacks whose crowd answer is likely wrong, most likely first.

    Parameters
    ----------
    stacks
        One row per labelled stack: ``filename``, ``label`` (the crowd's answer, 1 = stalled),
        ``crowd_score`` (fraction of the crowd saying stalled; may be missing), ``tier1`` and
        ``probability`` (the out-of-fold model's P(stalled)).
    max_margin
        Largest crowd margin (see :func:`crowd_margin`) still open to doubt; 1 disables the
        margin rule, leaving cleanlab's rule alone.
    filter_by
        One of :data:`FILTERS`, passed to cleanlab's ``find_label_issues``.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, ranked: ``label_quality`` is the probability the model gives the
        crowd's answer (low = likely error) and ``reason`` says why in words.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> p = np.r_[rng.uniform(0.7, 1, 40), rng.uniform(0, 0.3, 160)]   # 40 stalls, 160 flowing
    >>> label = np.r_[np.ones(40, int), np.zeros(160, int)]
    >>> label[[0, 50]] = 1 - label[[0, 50]]                              # two crowd errors
    >>> p[[0, 50]] = [0.95, 0.02]
    >>> score = np.where(label == 1, 0.9, 0.1); score[[0, 50]] = [0.4, 0.6]
    >>> stacks = pd.DataFrame({"filename": [f"{i}.mp4" for i in range(200)], "label": label,
    ...                        "crowd_score": score, "tier1": False, "probability": p})
    >>> find_crowd_errors(stacks)["filename"].tolist()
    ['50.mp4', '0.mp4']
    """
    import numpy as np
    import pandas as pd
    from cleanlab.filter import find_label_issues  # 1 s to import: not on `stalltriage --help`'s path

    if filter_by not in FILTERS:
        raise ValueError(f"filter_by must be one of {', '.join(FILTERS)}, not {filter_by!r}")
    frame = _checked(stacks)
    if frame.empty or frame["label"].nunique() < 2:
        return pd.DataFrame(columns=COLUMNS)
    labels = frame["label"].to_numpy(int)
    p = frame["probability"].to_numpy(float)
    issue = find_label_issues(labels, np.column_stack([1 - p, p]), filter_by=filter_by, n_jobs=1)
    margin = crowd_margin(frame["crowd_score"])
    doubtful = margin.isna() | (margin <= max_margin)
    flagged = frame.loc[issue & doubtful.to_numpy()].assign(
        label_quality=lambda rows: np.where(rows["label"] == 1, rows["probability"], 1 - rows["probability"]),
        margin=margin)
    flagged["reason"] = [_reason(row) for row in flagged.itertuples()]
    return flagged.sort_values(["label_quality", "filename"]).reset_index(drop=True).loc[:, COLUMNS]


def _checked(stacks: pd.DataFrame) -> pd.DataFrame:
    """The labelled rows with the needed columns; a clear error naming what is missing or wrong."""
    import pandas as pd

    missing = [c for c in ("filename", "label", "crowd_score", "tier1", "probability") if c not in stacks.columns]
    if missing:
        raise ValueError(f"stacks lack columns {missing}")
    frame = stacks[stacks["label"].notna()].reset_index(drop=True)
    p = pd.to_numeric(frame["probability"], errors="coerce")
    if not p.between(0, 1).all() or not frame["label"].isin((0, 1)).all():
        raise ValueError("probability must lie in [0, 1] and label be 0 or 1 on every labelled stack")
    return frame.assign(probability=p, label=frame["label"].astype(int))


def _reason(row) -> str:  # noqa: ANN001 - a namedtuple from itertuples
    """Why one stack is flagged, in words an admin reads beside the stack."""
    import pandas as pd

    answer = "stalled" if row.label == 1 else "flowing"
    crowd = (f"crowd said {answer} ({row.crowd_score:.0%} voted stalled)" if not pd.isna(row.crowd_score)
             else f"crowd said {answer} (no crowd score)")
    tier = "; tier 1" if bool(row.tier1) else ""
    return f"{crowd}{tier}; the model gives {answer} {row.label_quality:.0%} (P(stalled) {row.probability:.2f})"
