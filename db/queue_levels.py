"""Queue bookkeeping: keep ``prediction.review_level`` in step with reviews and crowd labels.

``review_level`` is the number of reviews of the stack that count towards k (every answer but
"unsure"), or NULL when the crowd's label is known. Whatever changes reviews or labels calls
:func:`refresh_review_levels` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.orm import Session

from db.models import CrowdAnswer, Prediction, Review

COUNTED = Review.answer != "unsure"


def review_level_expression():  # noqa: ANN201 - a SQL expression
    """The level of a prediction row, computed from the reviews and crowd answer of its vessel."""
    labelled = exists().where(CrowdAnswer.vessel_id == Prediction.vessel_id, CrowdAnswer.label.is_not(None))
    counted = select(func.count()).where(Review.vessel_id == Prediction.vessel_id, COUNTED).scalar_subquery()
    return case((labelled, None), else_=counted)


def refresh_review_levels(session: Session, *, vessel_ids: Collection[int], model_run_id: int | None = None) -> None:
    """Recompute ``review_level`` of these vessels' predictions (of one run, or of every run)."""
    if not vessel_ids:
        return
    statement = (update(Prediction).where(Prediction.vessel_id.in_(list(vessel_ids)))
                 .values(review_level=review_level_expression()))
    if model_run_id is not None:
        statement = statement.where(Prediction.model_run_id == model_run_id)
    session.connection().execute(statement)
