"""The two promises a triage policy can keep, named once for the command line, the app and the export.

* ``relative`` (the default): measured against the **human standard**, the labels a lab already
  trusts (crowd, expert or adjudicated review). Routed stacks get human answers, so only the
  automatic decisions can differ from that standard: the policy changes at most ``1 - s`` of the
  human "stalled" answers (decided flowing below ``t_low``) and at most ``1 - p`` of the human
  "flowing" answers (decided stalled above ``t_high``). Each side rests on one threshold.
* ``absolute``: measured against the **truth**, human error counted (measured on known-answer
  stacks, stated as an assumption, or the pessimistic prior of ``core.labels.skill``). It can never
  exceed the humans' own quality.
"""

from __future__ import annotations

PROMISES = ("relative", "absolute")
"""The promise a policy keeps; stored with every policy."""
DEFAULT_PROMISE = "relative"


def check_promise(promise: str) -> str:
    """``promise`` if it is one of :data:`PROMISES`, else a ``ValueError`` naming the choices."""
    if promise not in PROMISES:
        raise ValueError(f"promise must be one of {', '.join(PROMISES)}, not {promise!r}")
    return promise


def promise_sentence(promise: str, *, sensitivity: float, specificity: float, confidence: float) -> str:
    """One plain sentence saying what a policy with these targets promises.

    Examples
    --------
    >>> promise_sentence("relative", sensitivity=0.99, specificity=0.95, confidence=0.95)
    'Relative to the human standard: the automatic decisions change at most 1% of the human "stalled" answers and at most 5% of the human "flowing" answers (95% confidence for both sides together).'
    """
    check_promise(promise)
    miss, false_alarm = _percent(1 - sensitivity), _percent(1 - specificity)
    level = f"({_percent(confidence)} confidence for both sides together)"
    if promise == "relative":
        return (f'Relative to the human standard: the automatic decisions change at most {miss} of the human '
                f'"stalled" answers and at most {false_alarm} of the human "flowing" answers {level}.')
    return (f"Absolute, against the truth with human error counted: the combined human + model labels find at "
            f"least {_percent(sensitivity)} of the stalls and keep at least {_percent(specificity)} of the flowing "
            f"stacks {level}.")


def _percent(value: float) -> str:
    """``0.01`` → ``'1%'``, ``0.005`` → ``'0.5%'`` (no float noise)."""
    return f"{round(100 * value, 4):g}%"
