"""Reviewers' answers as training labels: what a lab's reviews teach the next model.

A stack's reviewed label is its final human label as the export decides it (``db.export``): the
stack's own k (the ``reviews_required`` recorded with its most recent review) reached by its
answers, with several stalled/flowing answers their skill-weighted (Dawid–Skene) vote. One rule for
both places, so the labels a model learns from are the labels the lab exports. Answers to
known-answer stacks measure the reviewer and never relabel a stack (such a stack keeps its known
crowd label); a stack that reviewers marked a bad stack (at least k such answers, outnumbering the
others), or whose reviewers tie, has no reviewed label.

Reviewed stacks enter training whatever their split, as records with ``source="review"`` and
their human label (trusted like tier 1). A reviewed test stack thereby becomes a labelled stack
of the next run: under cross-fitting all folds but one train on it and that one scores it out of
fold, so its score never comes from a member that saw its label.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd
from sqlalchemy.orm import Session

from core.labels.records import StackRecord
from db.export import final_labels
from db.vessels import stack_records

REVIEW_SOURCE = "review"


def reviewed_labels(session: Session) -> pd.DataFrame:
    """Every stack whose final label comes from its reviewers: filename, label (1 stalled), reason.

    The reason says what the label rests on (one review, a majority, a skill-weighted vote with
    P(stalled)), as in the export.
    """
    columns = ["filename", "final_label", "reason"]
    parts = [chunk.loc[(chunk["source"] == "human") & chunk["final_label"].notna(), columns]
             for chunk in final_labels(session)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return frame.rename(columns={"final_label": "label"}).astype({"label": "int64"})


def with_reviewed_labels(records: Sequence[StackRecord], reviewed: pd.DataFrame) -> list[StackRecord]:
    """``records`` with each reviewed stack's label replaced by its human label (``source="review"``).

    Records of stacks without a reviewed label are returned unchanged. A reviewed record keeps its
    split and drops its crowd score (the human label is the target), and is trusted like tier 1.
    """
    label_of = dict(zip(reviewed["filename"], reviewed["label"].astype(int)))
    return [dataclasses.replace(rec, label=label_of[rec.filename], crowd_score=None, tier1=True, source=REVIEW_SOURCE)
            if rec.filename in label_of else rec for rec in records]


def training_records(session: Session, *, reviews: bool = True, unlabelled: bool = False) -> list[StackRecord]:
    """The ingested stacks training chooses from: the training split, plus (``reviews``) every
    reviewed stack carrying its human label, plus (``unlabelled``) every other ingested stack, whose
    images a run with ``--unlabelled pseudo`` learns from without reading any answer of theirs."""
    records = stack_records(session, split=None if reviews or unlabelled else "train")
    if reviews:
        records = with_reviewed_labels(records, reviewed_labels(session))
    return records if unlabelled else [r for r in records if r.split == "train" or r.source == REVIEW_SOURCE]
