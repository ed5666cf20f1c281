"""Settings an admin changes in the app at run time (e.g. how often the queue serves known-answer stacks).

One row per key in ``app_setting`` holding a JSON value; a missing row means the default. Every
change is audited (``setting.change``) with the old and the new value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.audit import record_event
from db.models import AppSetting, utcnow


def get_setting(session: Session, key: str, default: Any = None) -> Any:
    """The stored value of ``key``, or ``default`` when it was never set."""
    value = session.scalar(select(AppSetting.value).where(AppSetting.key == key))
    return default if value is None else value


def set_setting(session: Session, key: str, value: Any, *, actor: str | None) -> None:
    """Store ``value`` under ``key`` in the caller's transaction and audit the change (no event when unchanged)."""
    row = session.get(AppSetting, key)
    previous = None if row is None else row.value
    if row is not None and previous == value:
        return
    if row is None:
        session.add(AppSetting(key=key, value=value, updated_by=actor, updated_at=utcnow()))
    else:
        row.value, row.updated_by, row.updated_at = value, actor, utcnow()
    session.flush()
    record_event(session, actor=actor, action="setting.change", entity="app_setting", entity_id=key,
                 details={"from": previous, "to": value})
