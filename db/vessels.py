"""Stacks and crowd answers: import from the competition CSVs, record ingest results, read records.

Imports are idempotent: importing the same rows again changes nothing. A row that disagrees with
what is stored is reported as a :class:`RowIssue` and not applied (never silently overwritten);
every other row is kept. Rows are any objects with the attributes named below (the typed rows of
``core.labels.competition``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (Boolean, Float, Integer, SmallInteger, String, Text, bindparam, case, func, insert, literal,
                        select, update)
from sqlalchemy.orm import Session

from core.labels.competition import SPLITS, RowIssue
from core.labels.records import StackRecord
from core.video.store import key_for
from db.bulk import analyze, staged
from db.models import CrowdAnswer, Prediction, UTCDateTime, Stack, utcnow


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


_VESSEL_FIELDS = ("project_id", "split", "num_frames")
_ANSWER_FIELDS = ("crowd_score", "tier1", "micro", "nano")
_FILENAMES = {"filename": String(255)}
_NEW_ANSWER_FIELDS = (*_ANSWER_FIELDS, "label", "metadata_file", "labels_file")
_NEW_VESSEL_TYPES = {"filename": String(255), "project_id": String(64), "split": String(8), "num_frames": Integer(),
                     "has_answer": Boolean(), "crowd_score": Float(), "tier1": Boolean(), "micro": Boolean(),
                     "nano": Boolean(), "label": SmallInteger(), "metadata_file": Text(),
                     "labels_file": Text()}
_FILL_TYPES = {"vessel_id": Integer(), "project_id": String(64), "num_frames": Integer(), "new_answer": Boolean(),
               "crowd_score": Float(), "tier1": Boolean(), "micro": Boolean(), "nano": Boolean()}
_LABEL_TYPES = {"vessel_id": Integer(), "new_answer": Boolean(), "label": SmallInteger(), "newly_labelled": Boolean()}


def _conflicts(stored: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The values that disagree with stored non-empty ones (a None value agrees with anything)."""
    return [f"{name} {value!r} differs from stored {stored[name]!r}" for name, value in values.items()
            if value is not None and stored[name] is not None and stored[name] != value]


def _fill(stored: dict[str, Any], values: dict[str, Any]) -> bool:
    """Fill ``stored``'s empty fields from ``values`` (in place); True when one was filled."""
    filled = [name for name, value in values.items() if value is not None and stored[name] is None]
    stored.update({name: values[name] for name in filled})
    return bool(filled)


def _stored_stacks(session: Session, filenames: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What is stored about these stacks, by filename: vessel id and fields, and the crowd answer (None if none)."""
    with staged(session, "filename", ((name,) for name in filenames), _FILENAMES) as names:
        query = (select(Stack.filename, Stack.id, *(Stack.__table__.c[name] for name in _VESSEL_FIELDS),
                        CrowdAnswer.vessel_id.label("answered"), CrowdAnswer.label, CrowdAnswer.labels_file,
                        *(CrowdAnswer.__table__.c[name] for name in _ANSWER_FIELDS))
                 .join(names, names.c.filename == Stack.filename)
                 .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id))
        rows = session.connection().execute(query).all()
    answer_fields = ("label", "labels_file", *_ANSWER_FIELDS)
    return {filename: {"id": vessel_id, **dict(zip(_VESSEL_FIELDS, values[:3])),
                       "answer": None if values[3] is None else dict(zip(answer_fields, values[4:]))}
            for filename, vessel_id, *values in rows}


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


def import_metadata(session: Session, *, rows: Iterable[Any], source: str, split: str,
                    labels: Iterable[Any] = (), labels_source: str | None = None) -> ImportReport:
    """Add vessels (and their crowd answers, for training metadata) from metadata rows.

    The rows are compared with what is stored in one pass and written set-based (a million rows
    take seconds). A row repeating a filename of an earlier row is merged like a row of a later
    import.

    Parameters
    ----------
    rows
        Objects with ``filename``, ``project_id``, ``num_frames`` and, in training metadata,
        ``crowd_score``, ``tier1``, ``micro``, ``nano``; ``line`` (CSV line number) if known.
    source
        The file the rows came from, named in issues and stored with the vessel.
    split
        ``"train"`` for ``train_metadata.csv`` (rows carry crowd scores), ``"test"`` otherwise.
    labels, labels_source
        ``train_labels.csv`` rows and their file, applied after the metadata rows exactly as
        :func:`import_labels` would, in the same pass: a new stack's crowd answer is written once,
        with its label, instead of inserted and then updated. Their issues join the report; the
        counts are the metadata rows'.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    rows, labels = list(rows), list(labels)
    if labels and not labels_source:
        raise ValueError("labels need the labels_source they came from")
    report = ImportReport()
    stored = _stored_stacks(session, _filenames(rows) | _filenames(labels))
    new: dict[str, dict[str, Any]] = {}
    filled: dict[str, dict[str, Any]] = {}
    for row in rows:
        line = getattr(row, "line", None)
        filename = str(row.filename or "").strip()
        if not filename:
            report.issues.append(RowIssue(source, line, None, "row has no filename; skipped"))
            continue
        notes: list[str] = []
        project = getattr(row, "project_id", None)
        vessel_values = {"project_id": None if project is None else str(project), "split": split,
                         "num_frames": _num_frames(row, notes)}
        answer_values = {"crowd_score": _crowd_score(row, notes), "tier1": _optional_bool(getattr(row, "tier1", None)),
                         "micro": _optional_bool(getattr(row, "micro", None)),
                         "nano": _optional_bool(getattr(row, "nano", None))}
        report.issues.extend(RowIssue(source, line, filename, note) for note in notes)
        has_answer = any(value is not None for value in answer_values.values())
        stack = stored.get(filename)
        if stack is None:
            stored[filename] = new[filename] = {"id": None, **vessel_values,
                                                "answer": _new_answer(answer_values, source) if has_answer else None}
            report.added += 1
            continue
        answer = stack["answer"]
        conflicts = _conflicts(stack, vessel_values) or (_conflicts(answer, answer_values) if has_answer and answer
                                                         else [])
        if conflicts:
            report.issues.append(RowIssue(source, line, filename, "conflicts with the database, not applied: "
                                          + "; ".join(conflicts)))
            continue
        changed = _fill(stack, vessel_values)
        if has_answer and answer is None:
            stack["answer"], stack["new_answer"], changed = _new_answer(answer_values, source), True, True
        elif has_answer:
            changed = _fill(answer, answer_values) or changed
        if changed and filename not in new:
            filled[filename] = stack
        report.updated += changed
        report.unchanged += not changed
    label_report = ImportReport()
    written = _plan_labels(stored, labels, labels_source or "", label_report)
    report.issues.extend(label_report.issues)
    _insert_vessels(session, new, source=source)
    _fill_vessels(session, filled, source=source)
    _write_labels(session, written, source=labels_source or "")
    return report


def _filenames(rows: Sequence[Any]) -> set[str]:
    return {str(row.filename or "").strip() for row in rows} - {""}


def _new_answer(values: dict[str, Any], metadata_file: str | None) -> dict[str, Any]:
    """A crowd answer not stored yet: the metadata's fields from ``metadata_file`` (None: none), no label yet."""
    return {**values, "label": None, "metadata_file": metadata_file, "labels_file": None}


def _insert_vessels(session: Session, new: dict[str, dict[str, Any]], *, source: str) -> None:
    """Insert new vessels (and their crowd answers, labels included) in two set-based statements."""
    connection = session.connection()
    rows = ((name, *(stack[field] for field in _VESSEL_FIELDS), stack["answer"] is not None,
             *((stack["answer"] or {}).get(field) for field in _NEW_ANSWER_FIELDS)) for name, stack in new.items())
    with staged(session, "new_vessel", rows, _NEW_VESSEL_TYPES) as stage:
        now = bindparam("now", type_=UTCDateTime())
        connection.execute(insert(Stack).from_select(
            ["filename", *_VESSEL_FIELDS, "metadata_file", "status", "created_at"],
            select(stage.c.filename, *(stage.c[field] for field in _VESSEL_FIELDS), literal(source),
                   literal("pending"), now)), {"now": utcnow()})
        connection.execute(insert(CrowdAnswer).from_select(
            ["vessel_id", *_NEW_ANSWER_FIELDS],
            select(Stack.id, *(stage.c[field] for field in _NEW_ANSWER_FIELDS))
            .join(Stack, Stack.filename == stage.c.filename).where(stage.c.has_answer)))
    analyze(session, "vessel", len(new))


def _fill_vessels(session: Session, filled: dict[str, dict[str, Any]], *, source: str) -> None:
    """Write the empty fields of stored vessels and crowd answers that rows filled in (rare after a first import)."""
    if not filled:
        return
    connection = session.connection()
    rows = ((stack["id"], stack["project_id"], stack["num_frames"], stack.get("new_answer", False),
             *((stack["answer"] or {}).get(field) for field in _ANSWER_FIELDS)) for stack in filled.values())
    with staged(session, "filled_vessel", rows, _FILL_TYPES) as stage:
        vessel, answer = Stack.__table__, CrowdAnswer.__table__
        connection.execute(update(Stack).where(Stack.id == stage.c.vessel_id)
                        .values({name: func.coalesce(vessel.c[name], stage.c[name]) for name in ("project_id",
                                                                                                 "num_frames")})
                        )
        connection.execute(insert(CrowdAnswer).from_select(
            ["vessel_id", *_ANSWER_FIELDS, "metadata_file"],
            select(stage.c.vessel_id, *(stage.c[field] for field in _ANSWER_FIELDS), literal(source))
            .where(stage.c.new_answer)))
        connection.execute(update(CrowdAnswer).where(CrowdAnswer.vessel_id == stage.c.vessel_id, ~stage.c.new_answer)
                        .values({name: func.coalesce(answer.c[name], stage.c[name]) for name in _ANSWER_FIELDS})
                        )


def import_labels(session: Session, *, rows: Iterable[Any], source: str) -> ImportReport:
    """Set the crowd's binary label of known vessels from ``train_labels.csv`` rows, set-based.

    Rows have ``filename`` and ``stalled`` (0 or 1), and ``line`` if known. A label for a file
    that no metadata introduced is reported and skipped. A labelled stack leaves the review queue.
    """
    rows = list(rows)
    report = ImportReport()
    written = _plan_labels(_stored_stacks(session, _filenames(rows)), rows, source, report)
    _write_labels(session, written, source=source)
    return report


def _plan_labels(stored: dict[str, dict[str, Any]], rows: Sequence[Any], source: str,
                 report: ImportReport) -> dict[int, tuple[bool, int, bool]]:
    """Apply label rows to ``stored`` (in place), counting them and their issues in ``report``.

    Returns, for stacks already in the database, vessel id → (new answer, label, newly labelled):
    what :func:`_write_labels` writes. A stack not stored yet (``id`` None) gets the label in its
    answer and is written with it.
    """
    written: dict[int, tuple[bool, int, bool]] = {}
    for row in rows:
        line = getattr(row, "line", None)
        filename = str(row.filename or "").strip()
        stack = stored.get(filename)
        if stack is None:
            report.issues.append(RowIssue(source, line, filename or None,
                                          "label for a file that is in no metadata file; skipped"))
            continue
        label = row.stalled
        if label is None or isinstance(label, float) and math.isnan(label) or label not in (0, 1):
            report.issues.append(RowIssue(source, line, filename, f"stalled must be 0 or 1, not {label!r}; skipped"))
            continue
        answer = stack["answer"]
        new_answer = answer is None
        if new_answer:
            answer = stack["answer"] = _new_answer(dict.fromkeys(_ANSWER_FIELDS), None)
        conflicts = _conflicts(answer, {"label": int(label)})
        if conflicts:
            report.issues.append(RowIssue(source, line, filename, "conflicts with the database, not applied: "
                                          + "; ".join(conflicts)))
            continue
        changed = answer["label"] is None
        if stack["id"] is not None and (changed or answer["labels_file"] is None):
            earlier = written.get(stack["id"])
            written[stack["id"]] = (new_answer or bool(earlier and earlier[0]), int(label),
                                    changed or bool(earlier and earlier[2]))
        answer.update(label=int(label), labels_file=answer["labels_file"] or source)
        report.updated += changed
        report.unchanged += not changed
    return written


def _write_labels(session: Session, written: dict[int, tuple[bool, int, bool]], *, source: str) -> None:
    """Store labels (new crowd answers or filled-in ones) and take newly labelled stacks out of the queue."""
    if not written:
        return
    connection = session.connection()
    with staged(session, "label", ((vessel_id, *values) for vessel_id, values in written.items()),
                _LABEL_TYPES) as stage:
        connection.execute(insert(CrowdAnswer).from_select(
            ["vessel_id", "label", "labels_file"],
            select(stage.c.vessel_id, stage.c.label, literal(source)).where(stage.c.new_answer)))
        connection.execute(update(CrowdAnswer).where(CrowdAnswer.vessel_id == stage.c.vessel_id, ~stage.c.new_answer)
                        .values(label=func.coalesce(CrowdAnswer.label, stage.c.label),
                                labels_file=func.coalesce(CrowdAnswer.labels_file, literal(source)))
                        )
        connection.execute(update(Prediction).where(Prediction.vessel_id.in_(
            select(stage.c.vessel_id).where(stage.c.newly_labelled))).values(review_level=None)
            )
    analyze(session, "crowd_answer", len(written))


class IngestResultRow(NamedTuple):
    """One file's ingest outcome, in the column order of the staging table it is copied into."""

    filename: str
    ok: bool
    error: str | None
    depth: int | None
    roi_x: int | None
    roi_y: int | None
    roi_width: int | None
    roi_height: int | None
    frame_width: int | None
    frame_height: int | None


_RESULT_TYPES = {"filename": String(255), "ok": Boolean(), "error": Text(),
                 **{name: Integer() for name in IngestResultRow._fields[3:]}}


def ingest_result_row(*, filename: str, ok: bool, error: str | None = None, depth: int | None = None,
                      box: tuple[int, int, int, int] | None = None,
                      frame_size: tuple[int, int] | None = None) -> IngestResultRow:
    """One file's ingest outcome as a row for :func:`record_ingest_results`.

    ``box`` is the ROI as ``core.video.crop`` gives it, (x0, y0, x1, y1) in frame pixels with the end
    exclusive (stored as x, y, width, height); ``frame_size`` is (width, height).
    """
    x0, y0, x1, y1 = box or (None,) * 4
    width, height = frame_size or (None, None)
    return IngestResultRow(filename, ok, None if ok else (error or "unknown error"), depth, x0, y0,
                           None if box is None else x1 - x0, None if box is None else y1 - y0, width, height)


def record_ingest_results(session: Session, rows: Sequence[IngestResultRow], *, at: datetime | None = None) -> int:
    """Store how ingesting files went (rows from :func:`ingest_result_row`), in one set-based update.

    Status becomes ``ok`` or ``failed`` with the error; a success also stores depth, ROI and frame
    size (a failure keeps what an earlier success stored). The latest attempt wins, within the rows
    too (a rerun that succeeds clears an earlier error). Files that no metadata row introduced are
    not stored. Returns how many vessels were updated.
    """
    connection = session.connection()
    latest = {row.filename: row for row in rows}
    if not latest:
        return 0
    with staged(session, "ingest_result", latest.values(), _RESULT_TYPES) as stage:
        on_success = {name: case((stage.c.ok, stage.c[name]), else_=Stack.__table__.c[name])
                      for name in ("depth", "roi_x", "roi_y", "roi_width", "roi_height", "frame_width", "frame_height")}
        statement = (update(Stack).where(Stack.filename == stage.c.filename)
                     .values(status=case((stage.c.ok, "ok"), else_="failed"), error=stage.c.error,
                             ingested_at=bindparam("at", type_=UTCDateTime()), **on_success)
                     )
        updated = connection.execute(statement, {"at": at or utcnow()}).rowcount
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
    query = (select(Stack.filename, Stack.project_id, Stack.split, CrowdAnswer.label,
                    CrowdAnswer.crowd_score, CrowdAnswer.tier1)
             .outerjoin(CrowdAnswer, CrowdAnswer.vessel_id == Stack.id).order_by(Stack.filename))
    if split is not None:
        query = query.where(Stack.split == split)
    if ingested_only:
        query = query.where(Stack.status == "ok")
    return [StackRecord(filename=filename, key=key_for(filename), project_id=project or "", split=row_split,
                        label=label, crowd_score=score, tier1=bool(tier1))
            for filename, project, row_split, label, score, tier1 in session.execute(query)]
