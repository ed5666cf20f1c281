"""Likely crowd errors of a run's reference, for ``stalltriage crowd-errors`` and the Crowd errors page.

The search itself is ``core.labels.crowd_errors`` (cleanlab on out-of-fold scores, narrow crowd votes);
this module feeds it the reference the tuner reads (``core.labels.records.REFERENCE_ROLES``, each
stack's reference label) and leaves out the stacks an admin has already looked at again
(``db.second_look``): a confirmed crowd answer is not doubted twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from core.labels.crowd_errors import COLUMNS, DEFAULT_MAX_MARGIN, FILTERS, find_crowd_errors
from core.labels.records import REFERENCE_ROLES
from db.predictions import predictions_frame
from db.second_look import looked_at


@dataclass(frozen=True)
class CrowdErrorSearch:
    """The flagged stacks (``core.labels.crowd_errors.COLUMNS``, most likely error first), how many
    labelled stacks were judged, and how many flagged ones already had their second look."""

    flagged: pd.DataFrame
    judged: int
    looked_at: int


def likely_crowd_errors(session: Session, *, model_run_id: int, max_margin: float = DEFAULT_MAX_MARGIN,
                        filter_by: str = FILTERS[0]) -> CrowdErrorSearch:
    """The run's likely crowd errors not yet looked at again (``judged`` 0: the run scored no
    labelled stack out of fold, so nothing could be judged)."""
    frame = predictions_frame(session, model_run_id=model_run_id)
    stacks = frame[frame["label"].notna() & frame["role"].isin(REFERENCE_ROLES)]
    if stacks.empty:
        return CrowdErrorSearch(pd.DataFrame(columns=COLUMNS), judged=0, looked_at=0)
    flagged = find_crowd_errors(stacks, max_margin=max_margin, filter_by=filter_by)
    seen = flagged["filename"].isin(looked_at(session))
    return CrowdErrorSearch(flagged[~seen].reset_index(drop=True), judged=len(stacks), looked_at=int(seen.sum()))
