"""Importing metadata and labels: idempotent, conflicts reported per row, bad values reported, good rows kept."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from db.models import CrowdAnswer, Stack
from db.vessels import import_labels, import_metadata, ingest_result_row, record_ingest_results


@dataclass
class Meta:
    filename: str
    project_id: str | None
    num_frames: int | None
    crowd_score: float | None = None
    tier1: bool | None = None
    micro: bool | None = None
    nano: bool | None = None
    line: int | None = None


@dataclass
class Label:
    filename: str
    stalled: object
    line: int | None = None


TRAIN = [Meta("a.mp4", "p1", 40, 0.9, True, False, False, 2), Meta("b.mp4", "p1", 50, 0.1, True, True, False, 3),
         Meta("c.mp4", "p2", 60, 0.5, False, False, False, 4)]


def _snapshot(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(
        select(Stack.filename, Stack.project_id, Stack.num_frames, Stack.split, CrowdAnswer.crowd_score,
               CrowdAnswer.tier1, CrowdAnswer.label)
        .outerjoin(CrowdAnswer).order_by(Stack.filename))]


def test_reimporting_the_same_files_changes_nothing(session_factory) -> None:
    with session_factory.begin() as session:
        report = import_metadata(session, rows=TRAIN, source="train_metadata.csv", split="train")
        assert (report.added, report.issues) == (3, [])
        labels = import_labels(session, rows=[Label("a.mp4", 1), Label("b.mp4", 0), Label("c.mp4", 0)],
                               source="train_labels.csv")
        assert (labels.updated, labels.issues) == (3, [])
    with session_factory() as session:
        before = _snapshot(session)
    with session_factory.begin() as session:
        again = import_metadata(session, rows=TRAIN, source="train_metadata.csv", split="train")
        assert (again.added, again.updated, again.unchanged, again.issues) == (0, 0, 3, [])
        labels = import_labels(session, rows=[Label("a.mp4", 1)], source="train_labels.csv")
        assert (labels.unchanged, labels.issues) == (1, [])
    with session_factory() as session:
        assert _snapshot(session) == before
        assert before[0] == ("a.mp4", "p1", 40, "train", 0.9, True, 1)


def test_conflicting_reimport_is_reported_per_row_and_not_applied(session_factory) -> None:
    with session_factory.begin() as session:
        import_metadata(session, rows=TRAIN, source="train_metadata.csv", split="train")
        import_labels(session, rows=[Label("a.mp4", 1)], source="train_labels.csv")
    changed = [Meta("a.mp4", "p9", 40, 0.9, True, False, False, 2), TRAIN[1],
               Meta("c.mp4", "p2", 60, 0.7, False, False, False, 4), Meta("d.mp4", "p3", 70, 0.0, True, line=5)]
    with session_factory.begin() as session:
        report = import_metadata(session, rows=changed, source="train_metadata.csv", split="train")
        labels = import_labels(session, rows=[Label("a.mp4", 0, 2)], source="train_labels.csv")
    assert (report.added, report.unchanged) == (1, 1)
    assert [(i.filename, i.line) for i in report.issues] == [("a.mp4", 2), ("c.mp4", 4)]
    assert "project_id 'p9' differs from stored 'p1'" in str(report.issues[0])
    assert "crowd_score 0.7 differs from stored 0.5" in str(report.issues[1])
    assert str(labels.issues[0]).startswith("train_labels.csv:2: a.mp4: conflicts")
    with session_factory() as session:
        rows = {r[0]: r for r in _snapshot(session)}
    assert rows["a.mp4"][1] == "p1" and rows["a.mp4"][6] == 1
    assert rows["c.mp4"][4] == 0.5
    assert rows["d.mp4"][1] == "p3"


def test_bad_values_are_reported_and_good_rows_kept(session_factory) -> None:
    rows = [Meta("nan.mp4", "p", 10, float("nan"), line=2), Meta("neg.mp4", "p", 10, -0.1, line=3),
            Meta("big.mp4", "p", 10, 1.5, line=4), Meta("", "p", 10, 0.5, line=5),
            Meta("frames.mp4", "p", -3, 0.5, line=6), Meta("good.mp4", "p", 10, 0.25, line=7)]
    with session_factory.begin() as session:
        report = import_metadata(session, rows=rows, source="train_metadata.csv", split="train")
        labels = import_labels(session, rows=[Label("ghost.mp4", 1, 2), Label("good.mp4", 2, 3),
                                              Label("good.mp4", float("nan"), 4), Label("big.mp4", 1, 5)],
                               source="train_labels.csv")
    messages = [str(issue) for issue in report.issues]
    assert messages[0] == "train_metadata.csv:2: nan.mp4: crowd_score nan is not in [0, 1]; stored without a crowd score"
    assert "neg.mp4: crowd_score -0.1 is not in [0, 1]" in messages[1]
    assert "big.mp4: crowd_score 1.5" in messages[2]
    assert "train_metadata.csv:5: ?: row has no filename" in messages[3]
    assert "frames.mp4: num_frames -3 is not a positive whole number" in messages[4]
    assert len(messages) == 5 and report.added == 5
    assert [str(i) for i in labels.issues] == [
        "train_labels.csv:2: ghost.mp4: label for a file that is in no metadata file; skipped",
        "train_labels.csv:3: good.mp4: stalled must be 0 or 1, not 2; skipped",
        "train_labels.csv:4: good.mp4: stalled must be 0 or 1, not nan; skipped"]
    with session_factory() as session:
        stored = {r[0]: r for r in _snapshot(session)}
        assert stored["good.mp4"][4] == 0.25 and stored["nan.mp4"][4] is None
        assert stored["big.mp4"][6] == 1
        assert session.scalar(select(func.count()).select_from(Stack)) == 5


def _full_snapshot(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(
        select(Stack.filename, Stack.project_id, Stack.num_frames, Stack.split, Stack.metadata_file,
               CrowdAnswer.crowd_score, CrowdAnswer.tier1, CrowdAnswer.micro, CrowdAnswer.label,
               CrowdAnswer.metadata_file, CrowdAnswer.labels_file)
        .outerjoin(CrowdAnswer).order_by(Stack.filename))]


def test_labels_imported_with_the_metadata_store_what_two_imports_store(session_factory) -> None:
    """One pass (the ingest's) equals metadata then labels: new and stored stacks, fills, conflicts, bad rows."""
    stored_first = [Meta("old.mp4", "p1", 40, 0.2, True, False, False, 2), Meta("bare.mp4", "p1", None, line=3)]
    metadata = [*TRAIN, Meta("old.mp4", "p1", 40, 0.2, True, False, False, 5), Meta("bare.mp4", "p1", 30, 0.6, False,
                                                                                    False, False, 6),
                Meta("quiet.mp4", "p2", 20, line=7)]
    labels = [Label("a.mp4", 1, 2), Label("b.mp4", 0, 3), Label("old.mp4", 0, 4), Label("bare.mp4", 1, 5),
              Label("quiet.mp4", 1, 6), Label("a.mp4", 0, 7), Label("c.mp4", 7, 8), Label("ghost.mp4", 1, 9)]
    results = []
    for one_pass in (False, True):
        with session_factory.begin() as session:
            session.execute(CrowdAnswer.__table__.delete())
            session.execute(Stack.__table__.delete())
            import_metadata(session, rows=stored_first, source="earlier.csv", split="train")
            import_labels(session, rows=[Label("old.mp4", 0)], source="earlier_labels.csv")
        with session_factory.begin() as session:
            if one_pass:
                report = import_metadata(session, rows=metadata, source="train_metadata.csv", split="train",
                                         labels=labels, labels_source="train_labels.csv")
                issues = [str(issue) for issue in report.issues]
            else:
                report = import_metadata(session, rows=metadata, source="train_metadata.csv", split="train")
                issues = [str(issue) for issue in report.issues] + [str(issue) for issue in import_labels(
                    session, rows=labels, source="train_labels.csv").issues]
            counts = (report.added, report.updated, report.unchanged)
        with session_factory() as session:
            results.append((counts, issues, _full_snapshot(session)))
    assert results[1] == results[0]
    counts, issues, snapshot = results[1]
    assert counts == (4, 1, 1)
    assert issues == ["train_labels.csv:7: a.mp4: conflicts with the database, not applied: label 0 differs from "
                      "stored 1", "train_labels.csv:8: c.mp4: stalled must be 0 or 1, not 7; skipped",
                      "train_labels.csv:9: ghost.mp4: label for a file that is in no metadata file; skipped"]
    rows = {row[0]: row for row in snapshot}
    assert rows["a.mp4"][8:] == (1, "train_metadata.csv", "train_labels.csv")
    assert rows["old.mp4"][8:] == (0, "earlier.csv", "earlier_labels.csv")
    assert rows["bare.mp4"][5:] == (0.6, False, False, 1, "train_metadata.csv", "train_labels.csv")
    assert rows["quiet.mp4"][5:] == (None, None, None, 1, None, "train_labels.csv")


def test_ingest_results_are_recorded_and_a_rerun_clears_the_error(session_factory) -> None:
    with session_factory.begin() as session:
        import_metadata(session, rows=[Meta("x.mp4", "p", 30)], source="test_metadata.csv", split="test")
        assert record_ingest_results(session, [ingest_result_row(filename="x.mp4", ok=False, error="no orange outline"),
                                               ingest_result_row(filename="unknown.mp4", ok=True)]) == 1
    with session_factory.begin() as session:
        vessel = session.scalar(select(Stack))
        assert (vessel.status, vessel.error, vessel.split) == ("failed", "no orange outline", "test")
        record_ingest_results(session, [ingest_result_row(filename="x.mp4", ok=True, depth=30, box=(5, 6, 45, 56),
                                                          frame_size=(320, 240))])
    with session_factory.begin() as session:
        vessel = session.scalar(select(Stack))
        assert (vessel.status, vessel.error, vessel.depth) == ("ok", None, 30)
        assert (vessel.roi_x, vessel.roi_y, vessel.roi_width, vessel.roi_height) == (5, 6, 40, 50)
        assert (vessel.frame_width, vessel.frame_height) == (320, 240)
        assert vessel.ingested_at.tzinfo is not None
        record_ingest_results(session, [ingest_result_row(filename="x.mp4", ok=False, error="gone"),
                                        ingest_result_row(filename="x.mp4", ok=False, error="still gone")])
    with session_factory() as session:  # a later failure keeps what the success stored; the last row wins
        vessel = session.scalar(select(Stack))
        assert (vessel.status, vessel.error, vessel.depth, vessel.roi_width) == ("failed", "still gone", 30, 40)


def test_stack_records_give_training_what_is_known(session_factory) -> None:
    from db.vessels import stack_records

    with session_factory.begin() as session:
        import_metadata(session, rows=TRAIN, source="train_metadata.csv", split="train")
        import_metadata(session, rows=[Meta("t.mp4", "p3", 30)], source="test_metadata.csv", split="test")
        import_labels(session, rows=[Label("a.mp4", 1), Label("b.mp4", 0)], source="train_labels.csv")
        record_ingest_results(session, [
            *(ingest_result_row(filename=name, ok=True, depth=10, box=(0, 0, 8, 8), frame_size=(64, 64))
              for name in ("a.mp4", "b.mp4", "t.mp4")),
            ingest_result_row(filename="c.mp4", ok=False, error="truncated")])
    with session_factory() as session:
        train = stack_records(session, split="train")
        everything = stack_records(session, ingested_only=False)
    assert [(r.filename, r.key, r.project_id, r.label, r.crowd_score, r.tier1) for r in train] == [
        ("a.mp4", "a", "p1", 1, 0.9, True), ("b.mp4", "b", "p1", 0, 0.1, True)]
    assert [(r.filename, r.split, r.label) for r in everything] == [
        ("a.mp4", "train", 1), ("b.mp4", "train", 0), ("c.mp4", "train", None), ("t.mp4", "test", None)]
