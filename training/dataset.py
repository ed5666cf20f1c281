"""Which stacks train, with which target, and the datasets built over the volume store.

Tier 1 stacks with a label train by default. ``tier2`` adds the other labelled or crowd-scored
training stacks: ``"label"`` trains them on their label (``train_labels.csv``) like tier 1,
``"soft"`` uses the crowd score itself as the target (soft label), ``"cut"`` labels them stalled
when the crowd score exceeds ``tier2_cut`` (the 2nd place used 0.6).
``soft_labels=True`` makes every stack with a crowd score train on that score.

Reviewed stacks (records with ``source="review"``, from ``db.training_labels``) train like
tier 1 stacks on their human label, whatever their split: a test stack that reviewers labelled
becomes a labelled stack of the run (the run's out-of-fold scores then cover it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.labels.records import StackRecord
from core.model.preprocess import FocusedStack, InputSpec, StackDataset
from training.augment import train_augment

log = logging.getLogger(__name__)

TIER2_MODES = ("off", "label", "soft", "cut")


@dataclass(frozen=True)
class TrainSample:
    """A stack chosen for training: hard label (splits, sampling, metrics) and loss target."""

    filename: str
    key: str
    project_id: str
    label: int
    target: float
    tier1: bool
    source: str = "crowd"


def _tier2_sample(rec: StackRecord, mode: str, cut: float) -> TrainSample | None:
    if mode == "off" or rec.crowd_score is None and rec.label is None:
        return None
    if mode == "cut":
        if rec.crowd_score is None:
            return None
        label = int(rec.crowd_score > cut)
        return TrainSample(rec.filename, rec.key, rec.project_id, label, float(label), False)
    if mode == "label":
        if rec.label is None:
            return None
        return TrainSample(rec.filename, rec.key, rec.project_id, int(rec.label), float(rec.label), False)
    label = rec.label if rec.label is not None else int(rec.crowd_score >= 0.5)
    target = rec.crowd_score if rec.crowd_score is not None else float(label)
    return TrainSample(rec.filename, rec.key, rec.project_id, int(label), float(target), False)


def select_samples(records: Sequence[StackRecord], *, tier2: str = "off", tier2_cut: float = 0.6,
                   soft_labels: bool = False) -> list[TrainSample]:
    """Choose the training stacks among ``records`` (those of split ``"train"`` and reviewed ones).

    When no training record is flagged tier 1 (a lab's own data), every labelled one counts as
    tier 1.

    Raises
    ------
    ValueError
        On an unknown ``tier2`` mode, or when no usable training stack remains.
    """
    if tier2 not in TIER2_MODES:
        raise ValueError(f"tier2 must be one of {TIER2_MODES}, got {tier2!r}")
    train = [r for r in records if r.split == "train" or r.source == "review"]
    any_tier1 = any(r.tier1 for r in train if r.source != "review")
    if train and not any_tier1:
        log.warning("no training stack is flagged tier 1: every labelled stack counts as tier 1")
    samples = []
    for rec in train:
        if (rec.tier1 or not any_tier1) and rec.label is not None:
            target = rec.crowd_score if soft_labels and rec.crowd_score is not None else float(rec.label)
            samples.append(TrainSample(rec.filename, rec.key, rec.project_id, int(rec.label), float(target), True,
                                       rec.source))
        elif (sample := _tier2_sample(rec, tier2, tier2_cut)) is not None:
            samples.append(sample)
    if not samples:
        raise ValueError(
            f"none of {len(records)} records is a labelled training stack ({len(train)} training stacks, "
            f"tier2={tier2}): ingest the training stacks with their answers, e.g. `stalltriage ingest "
            "VIDEO_DIR --metadata train_metadata.csv --labels train_labels.csv` (binary labels), or a "
            "train_metadata.csv with crowd_score and tier1 columns (crowd answers)")
    return samples


def make_dataset(samples: Sequence[TrainSample], store_path: str | Path, spec: InputSpec, *,
                 train: bool, elastic_prob: float = 0.0, cache: dict[str, FocusedStack] | None = None) -> StackDataset:
    """Dataset of ``samples``; ``train=True`` adds augmentation and a random depth-stride offset.
    ``cache`` keeps every stack's epoch-invariant input once read (see :class:`core.model.preprocess.StackDataset`)."""
    # quarter turns would swap along and across the vessel in the vessel view (and its non-square grid)
    transform = train_augment(elastic_prob=elastic_prob, rot90_prob=0.0 if spec.vessel else 0.5) if train else None
    return StackDataset(store_path, [s.key for s in samples], spec, targets=[s.target for s in samples],
                        transform=transform, random_offset=train, cache=cache)
