"""Which stack the review queue serves first: the admin's choice, and when each order helps.

* ``boundary`` (default): closest to the run's decision threshold first. Each answer settles the
  stack the model is least sure of; good for finishing a batch with the fewest human errors.
* ``stalled``: most likely stalled first. Finds the rare stalls early (a lab that needs the
  stalls found this week, not every stack labelled).
* ``uncertainty``: the ensemble's members disagree most first (highest ``prediction.spread``).
  Disagreement marks stacks unlike the training data; their answers teach the next model most
  (active learning, see ``stalltriage retrain``).
* ``random``: a uniformly drawn routed stack. Answers from a random draw look like every stack
  the policy routes, so measured agreement and any reference built from them stay unbiased.
* ``mix``: ``boundary`` with one claim in :data:`MIX_RANDOM_SHARE` (1 in 5) drawn at random:
  most answers where they teach, some that keep the picture honest.

Every order serves only stacks the active policy routes to humans, finishes half-reviewed
stacks first and mixes in known-answer stacks at the admin's rate (``db.queue``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from db.app_settings import get_setting, set_setting
from db.errors import DatabaseInputError

ORDERS = ("boundary", "stalled", "uncertainty", "random", "mix")
ORDER_KEY = "queue_order"
DEFAULT_ORDER = "boundary"
MIX_RANDOM_SHARE = 0.2


def queue_order(session: Session) -> str:
    """The order the queue serves stacks in (the admin's setting, default ``boundary``)."""
    order = get_setting(session, ORDER_KEY, DEFAULT_ORDER)
    return order if order in ORDERS else DEFAULT_ORDER


def set_queue_order(session: Session, *, order: str, actor: str | None) -> None:
    """Change the queue order (audited).

    Raises
    ------
    DatabaseInputError
        ``order`` is not one of :data:`ORDERS`.
    """
    if order not in ORDERS:
        raise DatabaseInputError(f"queue order must be one of {', '.join(ORDERS)}, not {order!r}")
    set_setting(session, ORDER_KEY, order, actor=actor)
