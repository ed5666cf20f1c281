"""Which stacks train, and on which target, for each ``tier2`` mode."""

import pytest

from core.labels.records import StackRecord
from training.dataset import TIER2_MODES, select_samples

RECORDS = [
    StackRecord("t1.mp4", "t1", "p1", "train", label=1, crowd_score=0.9, tier1=True),
    StackRecord("hard.mp4", "hard", "p1", "train", label=1, crowd_score=0.3, tier1=False),
    StackRecord("crowd-only.mp4", "crowd-only", "p2", "train", label=None, crowd_score=0.7, tier1=False),
    StackRecord("test.mp4", "test", "p2", "test", label=0, crowd_score=None, tier1=False),
]


@pytest.mark.parametrize("mode, expected", [
    ("off", {"t1.mp4": (1, 1.0)}),
    ("label", {"t1.mp4": (1, 1.0), "hard.mp4": (1, 1.0)}),
    ("soft", {"t1.mp4": (1, 1.0), "hard.mp4": (1, 0.3), "crowd-only.mp4": (1, 0.7)}),
    ("cut", {"t1.mp4": (1, 1.0), "hard.mp4": (0, 0.0), "crowd-only.mp4": (1, 1.0)}),
])
def test_each_mode_chooses_its_stacks_and_targets(mode, expected):
    samples = select_samples(RECORDS, tier2=mode)
    assert {s.filename: (s.label, s.target) for s in samples} == expected
    assert [s.tier1 for s in samples] == [s.filename == "t1.mp4" for s in samples]


def test_label_mode_trains_the_crowds_misses_on_their_label():
    """A stalled stack the crowd missed (score 0.3) keeps its label, which ``soft`` and ``cut`` lose."""
    by_mode = {mode: {s.filename: s.target for s in select_samples(RECORDS, tier2=mode)} for mode in TIER2_MODES}
    assert by_mode["label"]["hard.mp4"] == 1.0
    assert by_mode["soft"]["hard.mp4"] < 0.5 and by_mode["cut"]["hard.mp4"] == 0.0


def test_unknown_mode_and_no_labels_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="tier2 must be one of"):
        select_samples(RECORDS, tier2="all")
    with pytest.raises(ValueError, match="--labels train_labels.csv"):
        select_samples([RECORDS[2], RECORDS[3]], tier2="off")
