"""The triage band: what the active policy does with a stack, written once for numpy, pandas and SQL.

The policy's two thresholds split the model probability ``p``: ``p <= t_low`` is decided
**flowing**, ``p >= t_high`` **stalled** (a tie at a threshold is the model's), anything between
is routed to humans. A side switched off (``None``; NULL in the database) decides nothing: its
bound lies beyond every probability (:data:`OFF_LOW`, :data:`OFF_HIGH`), so one comparison serves
both cases in every language.

Around the band, who labels a stack (the export's ``source``; the queue serves what nobody has
labelled yet), first match wins, and a known answer always beats a model guess:

1. **human**: the reviewers, once their answers that count towards k reach k. Stalled/flowing
   answers vote; bad-stack answers count towards k unless the crowd's label is known, but never
   vote. A **bad stack** (source human, no label) needs k bad-stack answers outnumbering the
   decisive ones and no crowd label; a tie between the decisive answers labels nothing (the
   export's ``voted`` is false), so such a stack is not served again but stays undecided.
2. **crowd**: the crowd's label is known;
3. **model**: ``p`` lies on a side that decides;
4. **none**; the queue serves such a stack while it is routed and has fewer than k counted
   answers ("unsure" counts for nothing).

Every rule is written with the operators that numpy arrays, pandas Series and SQLAlchemy column
expressions share (``<=``, ``>=``, ``<``, ``&``, ``|``, ``~``; SQLAlchemy negates ``~(p <= t)``
to ``p > t``), in the spirit of SQLAlchemy's hybrid attributes: a :class:`BandRule`'s fields are
numbers for numpy and pandas (:meth:`BandRule.of`), and bound parameters or columns for SQL
(``db.band``). This module is the one place that compares a probability with a threshold.

The project validation gate (``core.policy.gate``) is one more per-stack input on each side,
:attr:`BandRule.low_open` and :attr:`BandRule.high_open` (True by default), ANDed into
:meth:`BandRule.flowing` and :meth:`BandRule.stalled`: a stack of a project whose side is closed
(not yet validated, or drifted) is not decided on that side, so it is routed, served and exported
alike (the export's ``reason`` names why). For numpy and pandas they are boolean arrays or Series
aligned with ``p``; for SQL, expressions on the stack's project (``db.band``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np

OFF_LOW = -1.0
"""The bound of a switched-off low side: no probability is at or below it."""
OFF_HIGH = 2.0
"""The bound of a switched-off high side: no probability is at or above it."""


class Decision(IntEnum):
    """What the policy does with one stack."""

    FLOWING = 0
    STALLED = 1
    HUMAN = 2


def validate_thresholds(t_low: float | None, t_high: float | None) -> tuple[float | None, float | None]:
    """The one rule for a policy's thresholds: each is ``None`` (that side decides nothing) or a
    number in [0, 1], and ``t_low < t_high`` when both are set. Returns them as floats / None.

    Raises
    ------
    ValueError
        Naming the threshold and the rule it breaks.

    Examples
    --------
    >>> validate_thresholds(0.1, None)
    (0.1, None)
    """
    checked = []
    for name, value in (("t_low", t_low), ("t_high", t_high)):
        if value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number in [0, 1] or None, got {value!r}") from None
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise ValueError(f"{name} must lie in [0, 1] (None: that side decides nothing), got {value}")
        checked.append(value)
    t_low, t_high = checked
    if t_low is not None and t_high is not None and not t_low < t_high:
        raise ValueError(f"t_low must be below t_high, got t_low={t_low}, t_high={t_high}")
    return t_low, t_high


class Sources(NamedTuple):
    """Who labels each stack (masks, mutually exclusive, in precedence order), and the answers
    counted towards k. ``bad_stack`` stacks are the reviewers' call too (source ``human``)."""

    human: Any
    bad_stack: Any
    crowd: Any
    model: Any
    counted: Any


@dataclass(frozen=True)
class BandRule:
    """The policy's band and review rule; see the module docstring.

    Parameters
    ----------
    low, high
        The bounds: ``t_low`` / ``t_high``, or :data:`OFF_LOW` / :data:`OFF_HIGH` for a side that
        decides nothing. Numbers (build them with :meth:`of`, which validates), or SQL
        expressions.
    reviews_required
        k: the answers that must count towards a stack before its reviewers decide it.
    low_open, high_open
        Whether each side may decide the stack (its project's validation gate): True, or per stack
        a boolean array / Series aligned with ``p``, or a SQL expression.

    Examples
    --------
    >>> BandRule.of(0.25, None).decide(np.array([0.25, 0.5, 1.0])).tolist()
    [0, 2, 2]
    """

    low: Any = OFF_LOW
    high: Any = OFF_HIGH
    reviews_required: Any = 1
    low_open: Any = True
    high_open: Any = True

    @classmethod
    def of(cls, t_low: float | None, t_high: float | None, reviews_required: int = 1) -> BandRule:
        """The rule of a policy's thresholds (``None``: that side decides nothing) and k.

        Raises
        ------
        ValueError
            Thresholds breaking :func:`validate_thresholds`, or k < 1.
        """
        t_low, t_high = validate_thresholds(t_low, t_high)
        if reviews_required < 1:
            raise ValueError(f"reviews_required must be at least 1, got {reviews_required}")
        return cls(OFF_LOW if t_low is None else t_low, OFF_HIGH if t_high is None else t_high,
                   int(reviews_required))

    @property
    def t_low(self) -> float | None:
        """The low threshold of a numeric rule, ``None`` when that side decides nothing."""
        return None if self.low == OFF_LOW else self.low

    @property
    def t_high(self) -> float | None:
        """The high threshold of a numeric rule, ``None`` when that side decides nothing."""
        return None if self.high == OFF_HIGH else self.high

    def flowing(self, p: Any) -> Any:
        """The model decides these stacks flowing (a tie at ``t_low`` included; the side open)."""
        return (p <= self.low) & self.low_open

    def stalled(self, p: Any) -> Any:
        """The model decides these stacks stalled (a tie at ``t_high`` included; the side open)."""
        return (p >= self.high) & self.high_open

    def automatic(self, p: Any) -> Any:
        """The model decides these stacks on one side or the other."""
        return self.flowing(p) | self.stalled(p)

    def routed(self, p: Any) -> Any:
        """These stacks lie strictly inside the band: the model leaves them to humans."""
        return ~self.flowing(p) & ~self.stalled(p)

    def to_humans(self, p: Any, *, crowd_known: Any) -> Any:
        """Routed stacks whose answer is not already known: the humans' share of the work."""
        return self.routed(p) & ~crowd_known

    def needs_review(self, p: Any, *, crowd_known: Any, counted: Any, k: Any = None) -> Any:
        """What the queue serves: stacks for humans with fewer than k answers counted towards k."""
        return self.to_humans(p, crowd_known=crowd_known) & (counted < self._k(k))

    def sources(self, p: Any, *, crowd_known: Any, decisive: Any, bad_stack: Any, voted: Any,
                k: Any = None) -> Sources:
        """Who labels each stack (numpy arrays or pandas Series of one length).

        Parameters
        ----------
        p
            Model probability (NaN where none: the model decides nothing).
        crowd_known
            The crowd's label is known (bool).
        decisive, bad_stack
            Stalled/flowing answers and bad-stack answers counted for the stack.
        voted
            The decisive answers name a label (a tie does not).
        k
            Each stack's k (default :attr:`reviews_required`).
        """
        k = self._k(k)
        counted = decisive + bad_stack * ~crowd_known
        bad = ~crowd_known & (bad_stack >= k) & (bad_stack > decisive)
        human = ~bad & voted & (counted >= k)
        open_ = ~human & ~bad
        crowd = open_ & crowd_known
        return Sources(human=human, bad_stack=bad, crowd=crowd, model=open_ & ~crowd_known & self.automatic(p),
                       counted=counted)

    def decide(self, p: np.ndarray) -> np.ndarray:
        """:class:`Decision` codes (``int8``) for probabilities ``p``."""
        return np.select([self.flowing(p), self.stalled(p)], [Decision.FLOWING, Decision.STALLED],
                         Decision.HUMAN).astype(np.int8)

    def _k(self, k: Any) -> Any:
        return self.reviews_required if k is None else k
