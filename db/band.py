"""The triage band (:mod:`core.band`) rendered to SQL.

``core.band.BandRule`` writes the rule once with operators SQL expressions share; here its fields
become SQL: bound parameters for the queue's cached statements (:data:`QUEUE_BAND`, bound by
:func:`band_parameters`), the stored policy's columns for queries over saved policies
(:data:`POLICY_BAND`). A policy side stored as NULL reads as the rule's bound beyond every
probability, so the comparison is the same with or without it.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func

from core.band import OFF_HIGH, OFF_LOW, BandRule
from db.models import PolicyRecord, Prediction

QUEUE_BAND = BandRule(low=bindparam("t_low"), high=bindparam("t_high"), reviews_required=bindparam("k"))
"""The rule with parameters ``t_low``, ``t_high`` and ``k`` (see :func:`band_parameters`)."""

POLICY_BAND = BandRule(low=func.coalesce(PolicyRecord.t_low, OFF_LOW),
                       high=func.coalesce(PolicyRecord.t_high, OFF_HIGH),
                       reviews_required=PolicyRecord.reviews_required)
"""The rule of each ``triage_policy`` row (a query joining that table)."""

CROWD_KNOWN = Prediction.review_level.is_(None)
"""A prediction's stack has a known crowd label (``db.queue_levels`` keeps ``review_level`` NULL then)."""


def band_parameters(band: BandRule) -> dict[str, float | int]:
    """The values of :data:`QUEUE_BAND`'s parameters for a numeric rule."""
    return {"t_low": band.low, "t_high": band.high, "k": band.reviews_required}
