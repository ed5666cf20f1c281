"""The triage band (:mod:`core.policy.band`) rendered to SQL.

``core.policy.band.BandRule`` writes the rule once with operators SQL expressions share; here its fields
become SQL: bound parameters for the queue's cached statements (:data:`QUEUE_BAND`, bound by
:func:`band_parameters`), the stored policy's columns for queries over saved policies
(:data:`POLICY_BAND`). A policy side stored as NULL reads as the rule's bound beyond every
probability, so the comparison is the same with or without it. Under a policy saved with the
project gate the queue uses :data:`GATED_QUEUE_BAND`, whose sides decide only the stacks of the
projects that side is open for.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased

from core.policy.band import OFF_HIGH, OFF_LOW, BandRule
from core.policy.gate import NO_PROJECT
from db.models import PolicyRecord, Prediction, Stack

QUEUE_BAND = BandRule(low=bindparam("t_low"), high=bindparam("t_high"), reviews_required=bindparam("k"))
"""The rule with parameters ``t_low``, ``t_high`` and ``k`` (see :func:`band_parameters`)."""

_STACK = aliased(Stack)
PREDICTION_PROJECT = (select(func.coalesce(_STACK.project_id, NO_PROJECT)).where(_STACK.id == Prediction.vessel_id)
                      .scalar_subquery())
"""The project of a prediction's stack (``''`` for none), for conditions on ``prediction`` rows."""

GATED_QUEUE_BAND = replace(QUEUE_BAND, low_open=PREDICTION_PROJECT.in_(bindparam("open_low", expanding=True)),
                           high_open=PREDICTION_PROJECT.in_(bindparam("open_high", expanding=True)))
""":data:`QUEUE_BAND` under a policy with the project gate: each side decides only the stacks of the
projects listed in the parameters ``open_low`` / ``open_high`` (``db.project_status.GateSides``).
A separate rule rather than an always-present condition: without the gate the band stays a plain
range on the probability, which the queue's index walks."""

POLICY_BAND = BandRule(low=func.coalesce(PolicyRecord.t_low, OFF_LOW),
                       high=func.coalesce(PolicyRecord.t_high, OFF_HIGH),
                       reviews_required=PolicyRecord.reviews_required)
"""The rule of each ``triage_policy`` row (a query joining that table)."""

CROWD_KNOWN = Prediction.review_level.is_(None)
"""A prediction's stack has a known crowd label (``db.queue_levels`` keeps ``review_level`` NULL then)."""


def band_parameters(band: BandRule) -> dict[str, float | int]:
    """The values of :data:`QUEUE_BAND`'s parameters for a numeric rule."""
    return {"t_low": band.low, "t_high": band.high, "k": band.reviews_required}
