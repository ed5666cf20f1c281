"""Stacks and crowd answers: import from the competition CSVs, record ingest results, read records.

Imports are idempotent: importing the same rows again changes nothing. A row that disagrees with
what is stored is reported as a :class:`RowIssue` and not applied (never silently overwritten);
every other row is kept. Rows are any objects with the attributes named below (the typed rows of
``core.competition``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Integer, String, Text, bindparam, case, select, update
from sqlalchemy.orm import Session, selectinload

from core.competition import RowIssue
from core.records import StackRecord
from core.store import key_for
from db.bulk import analyze, staged
from db.models import SPLITS, CrowdAnswer, UTCDateTime, Vessel, utcnow
from db.queue_levels import refresh_review_levels

BATCH = 2000


@dataclass
class ImportReport:
    """Counts of rows added, updated (filled-in fields) and unchanged, plus the rows with issues."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    issues: list[RowIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row had an issue."""
        return not self.issues


def _batches(rows: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _vessels_by_filename(session: Session, filenames: Sequence[str]) -> dict[str, Vessel]:
    query = (select(Vessel).where(Vessel.filename.in_(set(filenames)))
             .options(selectinload(Vessel.crowd_answer)))
    return {vessel.filename: vessel for vessel in session.scalars(query)}


def _merge(target: Any, values: dict[str, Any]) -> tuple[bool, list[str]]:
    """Fill ``target``'s empty attributes from ``values``; list those that disagree instead.

    Nothing is changed when any attribute disagrees. Returns (changed, conflicts).
    """
    conflicts = [f"{name} {value!r} differs from stored {getattr(target, name)!r}"
                 for name, value in values.items()
                 if value is not None and getattr(target, name) is not None and getattr(target, name) != value]
    if conflicts:
        return False, conflicts
    changed = False
    for name, value in values.items():
        if value is not None and getattr(target, name) is None:
            setattr(target, name, value)
            changed = True
    return changed, []


def _crowd_score(row: Any, issue: list[str]) -> float | None:
    score = getattr(row, "crowd_score", None)
    if score is None:
        return None
    try:
        score = float(score)
    except (TypeError, ValueError):
        issue.append(f"crowd_score {score!r} is not a number; stored without a crowd score")
        return None
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        issue.append(f"crowd_score {score!r} is not in [0, 1]; stored without a crowd score")
        return None
    return score


def _num_frames(row: Any, issue: list[str]) -> int | None:
    frames = getattr(row, "num_frames", None)
    if frames is None:
        return None
    try:
        whole = int(frames)
    except (TypeError, ValueError, OverflowError):
        whole = None
    if whole is None or whole != frames or whole < 1:
        issue.append(f"num_frames {frames!r} is not a positive whole number; stored without it")
        return None
    return whole


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def import_metadata(session: Session, *, rows: Iterable[Any], source: str, split: str) -> ImportReport:
    """Add vessels (and their crowd answers, for training metadata) from metadata rows.

    Parameters
    ----------
    rows
        Objects with ``filename``, ``project_id``, ``num_frames`` and, in training metadata,
        ``crowd_score``, ``tier1``, ``micro``, ``nano``; ``line`` (CSV line number) if known.
    source
        The file the rows came from, named in issues and stored with the vessel.
    split
        ``"train"`` for ``train_metadata.csv`` (rows carry crowd scores), ``"test"`` otherwise.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    report = ImportReport()
    for batch in _batches(rows):
        existing = _vessels_by_filename(session, [str(row.filename) for row in batch])
        for row in batch:
            _import_metadata_row(session, row, source=source, split=split, existing=existing, report=report)
    session.flush()
    return report


def _import_metadata_row(session: Session, row: Any, *, source: str, split: str,
                         existing: dict[str, Vessel], report: ImportReport) -> None:
    line = getattr(row, "line", None)
    filename = str(row.filename or "").strip()
    if not filename:
        report.issues.append(RowIssue(source, line, None, "row has no filename; skipped"))
        return
    notes: list[str] = []
    project = getattr(row, "project_id", None)
    vessel_values = {"project_id": None if project is None else str(project), "split": split,
                     "num_frames": _num_frames(row, notes)}
    answer_values = {"crowd_score": _crowd_score(row, notes), "tier1": _optional_bool(getattr(row, "tier1", None)),
                     "micro": _optional_bool(getattr(row, "micro", None)),
                     "nano": _optional_bool(getattr(row, "nano", None))}
    report.issues.extend(RowIssue(source, line, filename, note) for note in notes)
    has_answer = any(value is not None for value in answer_values.values())
    vessel = existing.get(filename)
    if vessel is None:
        vessel = Vessel(filename=filename, metadata_file=source, **vessel_values)
        if has_answer:
            vessel.crowd_answer = CrowdAnswer(metadata_file=source, **answer_values)
        session.add(vessel)
        existing[filename] = vessel
        report.added += 1
        return
    changed, conflicts = _merge(vessel, vessel_values)
    if not conflicts and has_answer:
        if vessel.crowd_answer is None:
            vessel.crowd_answer = CrowdAnswer(metadata_file=source)
        answer_changed, conflicts = _merge(vessel.crowd_answer, answer_values)
        changed = changed or answer_changed
    if conflicts:
        report.issues.append(RowIssue(source, line, filename, "conflicts with the database, not applied: "
                                      + "; ".join(conflicts)))
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


def import_labels(session: Session, *, rows: Iterable[Any], source: str) -> ImportReport:
    """Set the crowd's binary label of known vessels from ``train_labels.csv`` rows.

    Rows have ``filename`` and ``stalled`` (0 or 1), and ``line`` if known. A label for a file
    that no metadata introduced is reported and skipped. A labelled stack leaves the review queue.
    """
    report = ImportReport()
    for batch in _batches(rows):
        existing = _vessels_by_filename(session, [str(row.filename) for row in batch])
        labelled = [vessel.id for row in batch
                    if (vessel := _import_label_row(row, source=source, existing=existing, report=report))]
        session.flush()
        refresh_review_levels(session, vessel_ids=labelled)
    return report


def _import_label_row(row: Any, *, source: str, existing: dict[str, Vessel], report: ImportReport) -> Vessel | None:
    """Apply one label row; returns the vessel when its label was newly set."""
    line = getattr(row, "line", None)
    filename = str(row.filename or "").strip()
    vessel = existing.get(filename)
    if vessel is None:
        report.issues.append(RowIssue(source, line, filename or None,
                                      "label for a file that is in no metadata file; skipped"))
        return None
    label = row.stalled
    if label is None or isinstance(label, float) and math.isnan(label) or label not in (0, 1):
        report.issues.append(RowIssue(source, line, filename, f"stalled must be 0 or 1, not {label!r}; skipped"))
        return None
    if vessel.crowd_answer is None:
        vessel.crowd_answer = CrowdAnswer()
    changed, conflicts = _merge(vessel.crowd_answer, {"label": int(label)})
    if conflicts:
        report.issues.append(RowIssue(source, line, filename, "conflicts with the database, not applied: "
                                      + "; ".join(conflicts)))
        return None
    if vessel.crowd_answer.labels_file is None:
        vessel.crowd_answer.labels_file = source
    if changed:
        report.updated += 1
        return vessel
    report.unchanged += 1
    return None


_RESULT_TYPES = {"filename": String(255), "ok": Boolean(), "error": Text(), "depth": Integer(), "roi_x": Integer(),
                 "roi_y": Integer(), "roi_width": Integer(), "roi_height": Integer(), "frame_width": Integer(),
                 "frame_height": Integer()}


def ingest_result_row(*, filename: str, ok: bool, error: str | None = None, depth: int | None = None,
                      box: tuple[int, int, int, int] | None = None,
                      frame_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """One file's ingest outcome as a row for :func:`record_ingest_results`.

    ``box`` is the ROI as ``core.video`` gives it, (x0, y0, x1, y1) in frame pixels with the end
    exclusive (stored as x, y, width, height); ``frame_size`` is (width, height).
    """
    x0, y0, x1, y1 = box or (None,) * 4
    width, height = frame_size or (None, None)
    return {"filename": filename, "ok": ok, "error": None if ok else (error or "unknown error"), "depth": depth,
            "roi_x": x0, "roi_y": y0, "roi_width": None if box is None else x1 - x0,
            "roi_height": None if box is None else y1 - y0, "frame_width": width, "frame_height": height}


def record_ingest_results(session: Session, rows: Sequence[dict[str, Any]], *, at: datetime | None = None) -> int:
    """Store how ingesting files went (rows from :func:`ingest_result_row`), in one set-based update.

    Status becomes ``ok`` or ``failed`` with the error; a success also stores depth, ROI and frame
    size (a failure keeps what an earlier success stored). The latest attempt wins, within the rows
    too (a rerun that succeeds clears an earlier error). Files that no metadata row introduced are
    not stored. Returns how many vessels were updated.
    """
    if not rows:
        return 0
    frame = pd.DataFrame.from_records(rows, columns=list(_RESULT_TYPES)).drop_duplicates("filename", keep="last")
    with staged(session, frame, _RESULT_TYPES) as stage:
        on_success = {name: case((stage.c.ok, stage.c[name]), else_=Vessel.__table__.c[name])
                      for name in ("depth", "roi_x", "roi_y", "roi_width", "roi_height", "frame_width", "frame_height")}
        statement = (update(Vessel).where(Vessel.filename == stage.c.filename)
                     .values(status=case((stage.c.ok, "ok"), else_="failed"), error=stage.c.error,
                             ingested_at=bindparam("at", type_=UTCDateTime()), **on_success)
                     .execution_options(synchronize_session=False))
        updated = session.execute(statement, {"at": at or utcnow()}).rowcount
    analyze(session, "vessel", updated)
    return updated


def stack_records(session: Session, *, split: str | None = None, ingested_only: bool = True) -> list[StackRecord]:
    """Plain records (filename, key, project, split, label, crowd score, tier1) for training and prediction.

    Parameters
    ----------
    split
        ``"train"``, ``"test"`` or None for both.
    ingested_only
        Only stacks whose ingest succeeded (those the volume store holds).
    """
    query = (select(Vessel.filename, Vessel.project_id, Vessel.split, CrowdAnswer.label,
                    CrowdAnswer.crowd_score, CrowdAnswer.tier1)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Vessel.id).order_by(Vessel.filename))
    if split is not None:
        query = query.where(Vessel.split == split)
    if ingested_only:
        query = query.where(Vessel.status == "ok")
    return [StackRecord(filename=filename, key=key_for(filename), project_id=project or "", split=row_split,
                        label=label, crowd_score=score, tier1=bool(tier1))
            for filename, project, row_split, label, score, tier1 in session.execute(query)]
