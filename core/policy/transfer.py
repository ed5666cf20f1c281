"""Does a tuned promise transfer to the new stacks? The reference's stall share against theirs.

Labelled sets are enriched for stalls (about 20 %) while a lab's new stacks hold far fewer (about
5 %). Bounds on rates conditional on the *true* class (the absolute promise) do not move with the
share (label shift). Bounds on the share of *human answers* changed (the relative promise) do: at a
lower stall share more of the human "stalled" answers are the humans' own false alarms, which a
good model decides flowing. So the relative reading is re-read at the new stacks' estimated share
(:func:`core.policy.relative.worst_case_at_share`, at whichever end of the estimate's interval hurts
each side more, with the humans' error rates bounding how much of each class of answers can be
their errors) whenever the reference's share lies outside that interval, and the tool says whether it
still holds — never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.labels.skill import HumanErrorRates
from core.policy.label_shift import ShareEstimate
from core.policy.relative import worst_case_at_share


@dataclass(frozen=True)
class ShareCheck:
    """A policy's bounds read at the new stacks' stall share.

    ``matches``: the reference's share lies inside the estimate's interval (nothing to re-read).
    ``sensitivity_lower`` / ``specificity_lower``: the bounds that apply to the new stacks (the
    tuned ones when they match or for the absolute promise). ``holds``: both meet the targets.
    """

    promise: str
    estimate: ShareEstimate
    matches: bool
    sensitivity_lower: float
    specificity_lower: float
    holds: bool

    def describe(self) -> str:
        """One plain line for the command line, the app and the audit record."""
        e = self.estimate
        shares = (f"new stacks' estimated stall share {e.share:.1%} ({e.low:.1%}-{e.high:.1%}, {e.n_new:,} stacks) "
                  f"vs the reference's {e.reference_share:.1%}")
        if self.matches:
            return f"{shares}: the shares agree, the promise carries over as tuned"
        if self.promise == "absolute":
            return f"{shares}: the absolute bounds are per true class and carry over under label shift"
        verdict = "still holds" if self.holds else "DOES NOT carry over at that share"
        return (f"{shares}: re-read there (worst case over how many answers are human errors), the relative promise "
                f"{verdict}: sensitivity >= {self.sensitivity_lower:.4f}, specificity >= {self.specificity_lower:.4f}")


def error_shares(humans: HumanErrorRates, reference_share: float, level: float) -> tuple[float, float]:
    """The most of the human "stalled" answers that can be false alarms, and of the human
    "flowing" answers that can be misses, at the reference's stall share, with the humans' error
    rates at their upper bounds (``level``)."""
    miss, false_alarm = humans.miss.upper(level), humans.false_alarm.upper(level)
    stalls, flowing = reference_share, 1 - reference_share
    said_stalled = flowing * false_alarm + stalls * (1 - miss)
    said_flowing = stalls * miss + flowing * (1 - false_alarm)
    return flowing * false_alarm / said_stalled, stalls * miss / said_flowing


def check_share(*, promise: str, sensitivity_lower: float, specificity_lower: float, estimate: ShareEstimate,
                sensitivity: float, specificity: float, humans: HumanErrorRates | None = None,
                level: float = 0.975) -> ShareCheck:
    """Read a policy's two lower bounds at the new stacks' estimated stall share (see the module).

    ``humans`` (default the stated prior) bounds how much of each class of human answers can be
    the humans' errors (:func:`error_shares` at ``level``), which bounds how far the mix can move.
    """
    ref = estimate.reference_share
    matches = estimate.low <= ref <= estimate.high
    sens, spec = sensitivity_lower, specificity_lower
    if promise == "relative" and not matches:
        false_alarms, misses = error_shares(humans or HumanErrorRates.prior(), ref, level)
        ends = [min(max(end, 1e-6), 1 - 1e-6) for end in (estimate.low, estimate.high)]
        sens = 1 - max(worst_case_at_share(1 - sensitivity_lower, ref, end, false_alarms) for end in ends)
        spec = 1 - max(worst_case_at_share(1 - specificity_lower, 1 - ref, 1 - end, misses) for end in ends)
    return ShareCheck(promise=promise, estimate=estimate, matches=matches, sensitivity_lower=sens,
                      specificity_lower=spec, holds=sens >= sensitivity and spec >= specificity)
