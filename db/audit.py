"""Audit trail: who changed what and when (policies, users, review edits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditEvent, utcnow


def record_event(session: Session, *, actor: str | None, action: str, entity: str,
                 entity_id: str | int | None = None, details: dict[str, Any] | None = None,
                 at: datetime | None = None) -> AuditEvent:
    """Add an audit event to the caller's transaction (it is kept only if that transaction commits).

    Parameters
    ----------
    actor
        Name of the user (or ``"cli"``) who made the change.
    action
        What happened, dotted: ``policy.activate``, ``user.add``, ``review.edit`` …
    entity, entity_id
        The table and the row changed.
    details
        JSON-serialisable before/after values.
    at
        When it happened (default: now, UTC).
    """
    event = AuditEvent(actor=actor, action=action, entity=entity,
                       entity_id=None if entity_id is None else str(entity_id), details=details or {},
                       at=at or utcnow())
    session.add(event)
    return event


def recent_events(session: Session, *, limit: int = 100, entity: str | None = None) -> list[AuditEvent]:
    """The newest audit events first, optionally only those about ``entity``."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditEvent.entity == entity)
    return list(session.scalars(query))
