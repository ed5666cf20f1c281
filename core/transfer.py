"""Does a tuned promise transfer to the new stacks? The reference's stall share against theirs.

Labelled sets are enriched for stalls (about 20 %) while a lab's new stacks hold far fewer (about
5 %). Bounds on rates conditional on the *true* class (the absolute promise) do not move with the
share (label shift). Bounds on the share of *human answers* changed (the relative promise) do: at a
lower stall share more of the human "stalled" answers are the humans' own false alarms, which a
good model decides flowing. So the relative reading is re-read at the new stacks' estimated share
(:func:`core.relative.worst_case_at_share`, at whichever end of the estimate's interval hurts
each side more) whenever the reference's share lies outside that interval, and the tool says whether it
still holds — never silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.label_shift import ShareEstimate
from core.relative import worst_case_at_share


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
        return (f"{shares}: re-read there (worst case: every changed answer a human error), the relative promise "
                f"{verdict}: sensitivity >= {self.sensitivity_lower:.4f}, specificity >= {self.specificity_lower:.4f}")


def check_share(*, promise: str, sensitivity_lower: float, specificity_lower: float, estimate: ShareEstimate,
                sensitivity: float, specificity: float) -> ShareCheck:
    """Read a policy's two lower bounds at the new stacks' estimated stall share (see the module)."""
    ref = estimate.reference_share
    matches = estimate.low <= ref <= estimate.high
    sens, spec = sensitivity_lower, specificity_lower
    if promise == "relative" and not matches:
        ends = [min(max(end, 1e-6), 1 - 1e-6) for end in (estimate.low, estimate.high)]
        sens = 1 - max(worst_case_at_share(1 - sensitivity_lower, ref, end) for end in ends)
        spec = 1 - max(worst_case_at_share(1 - specificity_lower, 1 - ref, 1 - end) for end in ends)
    return ShareCheck(promise=promise, estimate=estimate, matches=matches, sensitivity_lower=sens,
                      specificity_lower=spec, holds=sens >= sensitivity and spec >= specificity)
