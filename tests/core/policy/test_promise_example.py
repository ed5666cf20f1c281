"""The user guide's worked example of the two promises, regenerated: the numbers it prints must be
the ones the code gives today (docs/user-guide.md, "The two promises, worked example")."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from core.metrics import zero_failure_size
from core.policy.relative import side_confidence
from core.policy.triage import TriageWarning, TunedTriagePolicy

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "user-guide.md"


def example_reference() -> tuple[np.ndarray, np.ndarray]:
    """2,000 reference stacks, 400 stalled, scores from a binormal model (AUC about 0.97)."""
    rng = np.random.default_rng(2026)
    y = np.array([1] * 400 + [0] * 1600)
    return expit(np.where(y == 1, 2.0, -2.5) + rng.normal(0, 1.3, len(y))), y


def example_lines() -> list[str]:
    """The example's result lines, as the guide prints them."""
    p, y = example_reference()
    lines = []
    for promise in ("relative", "absolute"):
        with pytest.warns(TriageWarning) if promise == "absolute" else nullcontext():
            tuned = TunedTriagePolicy(sensitivity=0.99, specificity=0.95, confidence=0.95, promise=promise).fit(p, y)
        r = tuned.report_
        lines.append(f"{promise}: t_low={_text(r.t_low)} t_high={_text(r.t_high)} automatic {r.auto_share:.1%} "
                     f"sensitivity >= {r.sensitivity_lower:.4f} specificity >= {r.specificity_lower:.4f} "
                     f"meets targets: {'yes' if tuned.feasible_ else 'no'}")
    lines.append(f"zero-failure reference for 0.99 at 95 % (97.5 % per side): {zero_failure_size(0.99, side_confidence(0.95))} "
                 f"stalls")
    return lines


def _text(value: float | None) -> str:
    return "off" if value is None else f"{value:.4f}"


def test_the_guide_prints_what_the_code_gives():
    guide = GUIDE.read_text()
    for line in example_lines():
        assert line in guide, f"docs/user-guide.md is out of date; expected the line:\n{line}"
