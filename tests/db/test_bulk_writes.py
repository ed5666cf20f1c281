"""The write path at a medium size: set-based (a handful of statements, not one per row), same results as before.

20,000 stacks go through the metadata and label imports, the ingest results, two prediction
recordings and a reviewed stack's refresh; the statement counts would grow with the rows if any
step went back to writing row by row, and the queue bookkeeping must equal what the per-stack
refresh (``db.queue_levels``) computes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import event, func, inspect, select

from db.models import CrowdAnswer, Prediction, Stack
from db.predictions import replace_predictions, upsert_model_run
from db.queue import submit_review
from db.queue_levels import refresh_review_levels
from db.vessels import import_labels, import_metadata, ingest_result_row, record_ingest_results
from tests.db.helpers import add_plain_users

N = 20_000
MAX_STATEMENTS = 25


@dataclass
class Row:
    filename: str
    project_id: str
    num_frames: int
    crowd_score: float | None
    tier1: bool | None
    micro: bool | None
    nano: bool | None


@dataclass
class Label:
    filename: str
    stalled: int


@contextmanager
def _statements(session) -> Iterator[list[str]]:  # noqa: ANN001 - a Session
    """The SQL statements the session's connection sends while the block runs."""
    seen: list[str] = []
    engine = session.get_bind()

    def count(_connection, _cursor, statement, *_args) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _names(n: int = N) -> list[str]:
    return [f"s{i:06d}.mp4" for i in range(n)]


def _scores(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    train = np.arange(N) < N // 2
    return pd.DataFrame({"filename": _names(), "probability": rng.random(N).round(6), "spread": 0.01,
                         "role": np.where(train, "out_of_fold", "new"),
                         "fold": pd.Series(np.arange(N) % 5, dtype="Int64").where(train)})


def _prediction_rows(session) -> list[tuple]:  # noqa: ANN001
    return [tuple(row) for row in session.execute(
        select(Prediction.vessel_id, Prediction.probability, Prediction.role, Prediction.fold, Prediction.review_level)
        .order_by(Prediction.vessel_id))]


def test_twenty_thousand_stacks_are_written_in_a_few_statements_with_the_old_results(session_factory) -> None:
    names = _names()
    rows = [Row(name, f"p{i % 7}", 30, 0.2, True, False, False) if i < N // 2 else Row(name, "p", 30, *[None] * 4)
            for i, name in enumerate(names)]
    with session_factory.begin() as session, _statements(session) as statements:
        assert import_metadata(session, rows=rows, source="train_metadata.csv", split="train").added == N
        assert import_labels(session, rows=[Label(name, i % 2) for i, name in enumerate(names[:N // 4])],
                             source="train_labels.csv").updated == N // 4
        assert record_ingest_results(session, [ingest_result_row(filename=name, ok=True, depth=30, box=(0, 0, 8, 8),
                                                                 frame_size=(64, 64)) for name in names]) == N
        run_id = upsert_model_run(session, name="run").id
        first = replace_predictions(session, model_run_id=run_id, predictions=_scores(0))
        assert (first.added, first.issues) == (N, [])
    assert len(statements) <= 2 * MAX_STATEMENTS, statements
    with session_factory.begin() as session:
        (ann,) = add_plain_users(session, ["ann"])
        submit_review(session, user_id=ann, vessel_id=N, answer="stalled")
    with session_factory.begin() as session, _statements(session) as statements:
        again = replace_predictions(session, model_run_id=run_id, predictions=_scores(1))
        assert (again.added, again.issues) == (N, [])
    assert len(statements) <= MAX_STATEMENTS, statements
    with session_factory.begin() as session:
        written = _prediction_rows(session)
        refresh_review_levels(session, vessel_ids=[vessel_id for vessel_id, *_ in written])
        assert _prediction_rows(session) == written  # the per-stack refresh finds nothing to change
        assert session.scalar(select(func.count()).select_from(Prediction)) == N  # a rerun replaces, never adds
    levels = {vessel_id: level for vessel_id, *_, level in written}
    assert levels[1] is None and levels[N // 4 + 1] == 0 and levels[N] == 1  # labelled, open, reviewed once
    assert [row[1] for row in written] == _scores(1)["probability"].tolist()
    assert [row[2:4] for row in written[:2]] == [("out_of_fold", 0), ("out_of_fold", 1)]
    assert written[-1][2:4] == ("new", None)


def test_reimporting_twenty_thousand_rows_changes_nothing(session_factory) -> None:
    rows = [Row(name, "p", 30, 0.5, True, False, False) for name in _names()]
    labels = [Label(name, 0) for name in _names()]
    with session_factory.begin() as session:
        import_metadata(session, rows=rows, source="train_metadata.csv", split="train")
        import_labels(session, rows=labels, source="train_labels.csv")
    for _ in range(2):
        with session_factory.begin() as session:
            metadata = import_metadata(session, rows=rows, source="train_metadata.csv", split="train")
            assert (metadata.added, metadata.updated, metadata.unchanged, metadata.issues) == (0, 0, N, [])
            assert import_labels(session, rows=labels, source="train_labels.csv").unchanged == N
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Stack)) == N
        assert session.scalar(select(func.count()).select_from(CrowdAnswer).where(CrowdAnswer.label == 0)) == N


def test_batch_after_batch_reuses_the_compiled_statements_and_leaves_no_staging_table(session_factory) -> None:
    names = _names(30)
    with session_factory.begin() as session:
        import_metadata(session, rows=[Row(name, "p", 30, *[None] * 4) for name in names], source="m.csv",
                        split="test")
    hits: list[bool] = []

    def cache_hit(_connection, _cursor, statement, _parameters, context, _executemany) -> None:  # noqa: ANN001
        if statement.startswith("UPDATE vessel"):
            hits.append(context.cache_hit == context.dialect.CACHE_HIT)

    engine = session_factory.kw["bind"]
    event.listen(engine, "after_cursor_execute", cache_hit)
    try:
        for batch in (names[:10], names[10:20], names[20:]):
            with session_factory.begin() as session:
                assert record_ingest_results(session, [ingest_result_row(filename=name, ok=True, depth=30,
                                                                         box=(0, 0, 8, 8), frame_size=(64, 64))
                                                       for name in batch]) == 10
    finally:
        event.remove(engine, "after_cursor_execute", cache_hit)
    assert hits[1:] == [True, True]  # compiled for the first batch (or an earlier test), then reused
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Stack).where(Stack.status == "ok")) == 30
        assert not {"stage_ingest_result", "stage_filename"} & set(inspect(session.connection()).get_temp_table_names())
