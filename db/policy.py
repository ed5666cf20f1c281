"""Triage policies: two thresholds on a model run's probabilities; one active at a time, every change audited.

The active policy decides which stacks the review queue serves (probability strictly between
``t_low`` and ``t_high``; a NULL threshold decides nothing on its side) and how the export
labels the others, both by its band rule (``core.policy.band``, rendered in SQL by ``db.band``).
:func:`save_policy` is where a policy is validated, once, whoever saves it (the Thresholds page,
``stalltriage tune``, a retrain). Saving a new active policy re-routes the queue at once, since
the queue reads the active policy on every claim.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.policy.band import BandRule
from core.policy.promise import DEFAULT_PROMISE, check_promise
from db.audit import record_event
from db.errors import DatabaseInputError
from db.models import ModelRun, PolicyRecord


def _describe(policy: PolicyRecord) -> dict[str, object]:
    return {"model_run_id": policy.model_run_id, "t_low": policy.t_low, "t_high": policy.t_high,
            "reviews_required": policy.reviews_required, "target_sensitivity": policy.target_sensitivity,
            "target_specificity": policy.target_specificity, "confidence": policy.confidence,
            "promise": policy.promise, "stall_share": policy.stall_share}


def save_policy(session: Session, *, model_run_id: int, t_low: float | None, t_high: float | None,
                reviews_required: int = 1, target_sensitivity: float | None = None,
                target_specificity: float | None = None,
                confidence: float | None = None, created_by: str | None = None,
                activate: bool = True, promise: str = DEFAULT_PROMISE,
                stall_share: float | None = None) -> PolicyRecord:
    """Store a policy (and by default make it the active one).

    Parameters
    ----------
    model_run_id
        The run whose probabilities the thresholds apply to.
    t_low, t_high
        p <= t_low is decided "flowing", p >= t_high "stalled", anything between goes to humans;
        None decides nothing on that side (stored as NULL).
    reviews_required
        k: a human label is the majority of at least k reviews. Thresholds and k are checked once,
        here, by :meth:`core.policy.band.BandRule.of` (the rule the queue and the export apply).
    target_sensitivity, target_specificity, confidence
        What the tuner aimed for (kept for the record).
    created_by
        Who saved it (user name, or ``"cli"``).
    promise, stall_share
        Which promise the targets keep (:data:`core.policy.promise.PROMISES`) and the reference's stall
        share it was tuned at.

    Raises
    ------
    DatabaseInputError
        Thresholds breaking that rule, k < 1, an unknown promise, or an unknown model run.
    """
    try:
        band = BandRule.of(t_low, t_high, reviews_required)
        check_promise(promise)
    except ValueError as error:
        raise DatabaseInputError(str(error)) from None
    if session.get(ModelRun, model_run_id) is None:
        raise DatabaseInputError(f"no model run with id {model_run_id}")
    policy = PolicyRecord(model_run_id=model_run_id, t_low=band.t_low, t_high=band.t_high,
                          reviews_required=band.reviews_required, target_sensitivity=target_sensitivity,
                          target_specificity=target_specificity, confidence=confidence, created_by=created_by,
                          promise=promise, stall_share=stall_share, active=False)
    session.add(policy)
    session.flush()
    record_event(session, actor=created_by, action="policy.save", entity="triage_policy", entity_id=policy.id,
                 details=_describe(policy))
    if activate:
        activate_policy(session, policy_id=policy.id, actor=created_by)
    return policy


def activate_policy(session: Session, *, policy_id: int, actor: str | None = None) -> PolicyRecord:
    """Make ``policy_id`` the one active policy (the previous one is deactivated)."""
    policy = session.get(PolicyRecord, policy_id)
    if policy is None:
        raise DatabaseInputError(f"no triage policy with id {policy_id}")
    previous = active_policy(session)
    session.execute(update(PolicyRecord).where(PolicyRecord.active.is_(True)).values(active=False)
                    .execution_options(synchronize_session="fetch"))
    session.flush()
    policy.active = True
    session.flush()
    record_event(session, actor=actor, action="policy.activate", entity="triage_policy", entity_id=policy.id,
                 details={"previous": None if previous is None else previous.id, **_describe(policy)})
    return policy


def active_policy(session: Session) -> PolicyRecord | None:
    """The active policy, or None."""
    return session.scalar(select(PolicyRecord).where(PolicyRecord.active.is_(True)))
