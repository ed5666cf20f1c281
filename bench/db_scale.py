"""Database benchmarks with a million stacks: the write path, and claim-next latency and export on PostgreSQL.

    python -m bench.db_scale write [--vessels 1000000] [--db URL | --sqlite]
    python -m bench.db_scale [queue] [--vessels 1000000] [--reviewed 20000] [--claims 300]
                             [--known-answer-rate 0.1] [--db URL]

Without ``--db`` a throwaway PostgreSQL 15 server is started (as in the tests) and removed at the
end; ``--sqlite`` uses a new SQLite file instead.

``write`` goes through the project's own recording path, each step timed: the ingest command's
recording (the metadata and labels CSV rows, then one result per stack through
``IngestRecorder``), the predict command's recording (``record_predictions``: one score per
stack), the same again (a rerun replaces the rows), and a policy change re-routing the stacks
(save the policy, then the queue's counts and the first claim under it).

``queue`` bulk-loads the data with COPY: 70 % training stacks with crowd labels (1 % stalled),
30 % test stacks; one model run scoring every stack (flowing ~ Beta(1, 30), stalled ~ Beta(8, 2));
an active policy (0.05, 0.95) with k = 1; ``--reviewed`` reviews already done on the test stacks
closest to the boundary (the worst case for a queue that would step over them). Then, one
reviewer at a time (20 reviewers in turn), each round claims the next stack (timed) and reviews
it (timed); the training stacks are tier-1 known answers, served at ``--known-answer-rate`` and
timed apart; every tenth round the queue's counts are taken (timed); finally the full export is
written to CSV and Parquet (timed).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from core.labels.competition import CsvResult, LabelRow, MetadataRow
from db.engine import make_session_factory, open_engine, run_transaction
from db.export import write_export
from db.known_answers import DEFAULT_RATE, set_known_answer_rate
from db.migrate import upgrade
from db.models import User
from db.policy import save_policy
from db.queue import claim_next, queue_stats, submit_review
from db.recording import IngestRecorder, record_predictions

REVIEWERS = 20
T_LOW, T_HIGH = 0.05, 0.95


def _copy(connection, table: str, frame: pd.DataFrame) -> None:  # noqa: ANN001 - a psycopg connection
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")
    with connection.cursor() as cursor, cursor.copy(
            f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def load(url: str, vessels: int, reviewed: int, seed: int = 0) -> None:
    """Bulk-load vessels, crowd answers, one run's predictions, users, a policy and some reviews."""
    import psycopg

    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc).isoformat()
    ids = np.arange(1, vessels + 1)
    train = ids <= int(vessels * 0.7)
    stalled = rng.random(vessels) < 0.01
    probability = np.where(stalled, rng.beta(8, 2, vessels), rng.beta(1, 30, vessels)).round(6)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as connection:
        _copy(connection, "vessel", pd.DataFrame({
            "id": ids, "filename": [f"v{i:07d}.mp4" for i in ids], "project_id": [f"p{i % 40}" for i in ids],
            "split": np.where(train, "train", "test"), "num_frames": rng.integers(20, 120, vessels),
            "status": "ok", "created_at": now}))
        _copy(connection, "crowd_answer", pd.DataFrame({
            "vessel_id": ids[train], "label": stalled[train].astype(int),
            "crowd_score": np.clip(stalled[train] * 0.8 + rng.normal(0.1, 0.05, train.sum()), 0, 1).round(3),
            "tier1": True}))
        connection.execute("INSERT INTO model_run (id, name, arch, params, metrics, threshold, created_at) "
                           "VALUES (1, 'bench', 'slim3d', '{}', '{}', 0.5, %s)", (now,))
        _copy(connection, "prediction", pd.DataFrame(index=ids, data={
            "model_run_id": 1, "vessel_id": ids, "probability": probability,
            "spread": rng.uniform(0, 0.1, vessels).round(4), "role": np.where(train, "out_of_fold", "new"),
            "review_level": pd.Series(0, index=ids, dtype="Int64").mask(train),
            "created_at": now}))
        _copy(connection, "app_user", pd.DataFrame({
            "id": range(1, REVIEWERS + 1), "name": [f"reviewer{i:02d}" for i in range(1, REVIEWERS + 1)],
            "password_hash": "!", "role": "reviewer", "active": True, "created_at": now}))
        connection.execute("INSERT INTO triage_policy (model_run_id, t_low, t_high, reviews_required, created_at, "
                           "active) VALUES (1, %s, %s, 1, %s, true)", (T_LOW, T_HIGH, now))
        connection.execute(
            "INSERT INTO review (vessel_id, user_id, answer, created_at) "
            "SELECT vessel_id, 1 + (row_number() OVER () %% %s), 'flowing', %s FROM "
            "(SELECT vessel_id FROM prediction WHERE review_level = 0 AND probability > %s AND probability < %s "
            " ORDER BY abs(probability - 0.5) LIMIT %s) closest",
            (REVIEWERS, now, T_LOW, T_HIGH, reviewed))
        connection.execute("UPDATE prediction SET review_level = 1 WHERE vessel_id IN (SELECT vessel_id FROM review)")
        connection.execute("SELECT setval(pg_get_serial_sequence('vessel', 'id'), %s)", (vessels,))
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def _ms(seconds: list[float]) -> str:
    return (f"median {statistics.median(seconds) * 1000:.1f} ms, "
            f"p95 {np.percentile(seconds, 95) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms")


def _scores(vessels: int, rng: np.random.Generator) -> pd.DataFrame:
    stalled = rng.random(vessels) < 0.01
    train = np.arange(vessels) < int(vessels * 0.7)
    return pd.DataFrame({"filename": [f"v{i:07d}.mp4" for i in range(vessels)],
                         "probability": np.where(stalled, rng.beta(8, 2, vessels), rng.beta(1, 30, vessels)).round(6),
                         "spread": rng.uniform(0, 0.1, vessels).round(4),
                         "role": np.where(train, "out_of_fold", "new"),
                         "fold": pd.Series(np.arange(vessels) % 5, dtype="Int64").where(train)})


class _Clock:
    """Wall-clock and this process's CPU seconds since the last lap (CPU time is what a shared machine's load
    does not inflate; on PostgreSQL the server's work is not in it)."""

    def __init__(self) -> None:
        self.lap()

    def lap(self) -> tuple[float, float]:
        now = time.perf_counter(), time.process_time()
        since = (now[0] - self._start[0], now[1] - self._start[1]) if hasattr(self, "_start") else (0.0, 0.0)
        self._start = now
        return since


def measure_writes(engine, vessels: int, seed: int = 0) -> dict[str, tuple[float, float]]:  # noqa: ANN001 - an Engine
    """(wall, CPU) seconds of each recording step (ingest, predict twice, two policy changes) at ``vessels`` stacks."""
    rng = np.random.default_rng(seed)
    factory = make_session_factory(engine)
    names = [f"v{i:07d}.mp4" for i in range(vessels)]
    n_train = int(vessels * 0.7)
    labels = rng.random(n_train) < 0.01
    train = CsvResult(Path("train_metadata.csv"), has_crowd=True, rows=[
        MetadataRow(name, "", f"p{i % 40}", 40, crowd_score=0.9 if labels[i] else 0.1, tier1=True, micro=False,
                    nano=False) for i, name in enumerate(names[:n_train])])
    test = CsvResult(Path("test_metadata.csv"), rows=[MetadataRow(name, "", f"p{i % 40}", 40)
                                                      for i, name in enumerate(names[n_train:])])
    label_rows = CsvResult(Path("train_labels.csv"), rows=[LabelRow(name, int(label))
                                                           for name, label in zip(names[:n_train], labels)])
    timings: dict[str, tuple[float, float]] = {}
    clock = _Clock()
    with IngestRecorder(factory) as recorder:
        assert recorder.import_csvs(train, label_rows) == [] and recorder.import_csvs(test, None) == []
        timings["ingest: CSV rows (metadata + labels)"] = clock.lap()
        for name in names:
            recorder.record(filename=name, ok=True, depth=40, box=(10, 12, 58, 60), frame_size=(512, 512))
    timings["ingest: per-stack results"] = clock.lap()
    scores = _scores(vessels, rng)
    clock.lap()
    for step in ("predict: record scores", "predict: rerun (replace)"):
        with factory.begin() as session:
            report = record_predictions(session, name="/runs/bench", config={"arch": "slim3d"},
                                        threshold={"threshold": 0.5}, predictions=scores, source="bench")
        timings[step] = clock.lap()
        assert report.added == vessels and report.ok, report.issues[:3]
    with factory.begin() as session:
        session.add(User(name="reviewer", password_hash="!", role="reviewer"))
    for step, (t_low, t_high) in (("re-route: policy (0.05, 0.95)", (0.05, 0.95)),
                                  ("re-route: policy (none, 0.9)", (None, 0.9))):
        clock.lap()
        with factory.begin() as session:
            save_policy(session, model_run_id=1, t_low=t_low, t_high=t_high, created_by="bench")
        with factory.begin() as session:
            stats = queue_stats(session)
            claim_next(session, user_id=1)
        timings[step] = clock.lap()
        print(f"  {step}: {stats.routed_to_humans} of {stats.predicted} stacks routed to humans", flush=True)
    return timings


def measure(url: str, claims: int, known_answer_rate: float, vessels: int) -> dict[str, list[float] | float]:
    """Claim + review rounds (each timed), then the full export to CSV and Parquet."""
    with open_engine(url) as engine:
        return _measure(engine, claims, known_answer_rate, vessels)


def _measure(engine, claims: int, known_answer_rate: float,  # noqa: ANN001 - an Engine
             vessels: int) -> dict[str, list[float] | float]:
    """Claims are timed by kind: regular (closest to the boundary / most likely stalled) and known-answer
    stacks mixed in at ``known_answer_rate`` (the training stacks, ids up to 70 % of ``vessels``)."""
    factory = make_session_factory(engine)
    with factory.begin() as session:
        set_known_answer_rate(session, rate=known_answer_rate, actor="bench")
    timings: dict[str, list[float] | float] = {"claim": [], "review": [], "claim_stalled": [], "claim_known": [],
                                               "counts": []}
    for round_ in range(claims):
        user_id = 1 + round_ % REVIEWERS
        order = "stalled" if round_ % 4 == 3 else "boundary"
        started = time.perf_counter()
        stack = run_transaction(factory, lambda s: claim_next(s, user_id=user_id, order=order))
        claimed = time.perf_counter()
        run_transaction(factory, lambda s: submit_review(s, user_id=user_id, vessel_id=stack.vessel_id,
                                                         answer="flowing"))
        kind = ("claim_known" if stack.vessel_id <= int(vessels * 0.7)
                else "claim_stalled" if order == "stalled" else "claim")
        timings[kind].append(claimed - started)
        timings["review"].append(time.perf_counter() - claimed)
        if round_ % 10 == 0:
            started = time.perf_counter()
            with factory() as session:
                queue_stats(session)
            timings["counts"].append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp, factory() as session:
        for suffix in (".csv", ".parquet"):
            started = time.perf_counter()
            summary = write_export(session, path=Path(tmp) / f"labels{suffix}")
            timings[f"export{suffix}"] = time.perf_counter() - started
            timings[f"export{suffix}_rows"] = summary.rows
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("write", "queue"), default="queue")
    parser.add_argument("--vessels", type=int, default=1_000_000)
    parser.add_argument("--reviewed", type=int, default=20_000, help="queue: reviews done before the rounds")
    parser.add_argument("--claims", type=int, default=300, help="queue: claim + review rounds")
    parser.add_argument("--known-answer-rate", type=float, default=DEFAULT_RATE,
                        help=f"queue: share of claims serving known-answer stacks (default {DEFAULT_RATE})")
    parser.add_argument("--db", default=None, help="an empty PostgreSQL database URL (default: a throwaway server)")
    parser.add_argument("--sqlite", action="store_true", help="write: a new SQLite file instead of PostgreSQL")
    parser.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the throwaway server, e.g. shared_buffers=2GB (repeatable)")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            args.db = f"sqlite:///{tmp}/bench.db"
        elif args.db is None:
            from testkit.postgres import PostgresServer

            server = PostgresServer().start(**dict(item.split("=", 1) for item in args.pg_setting))
            server.execute("CREATE DATABASE bench")
            args.db = server.database_url("bench")
        try:
            with open_engine(args.db) as engine:
                upgrade(engine)
                if args.mode == "write":
                    timings = measure_writes(engine, args.vessels)
                    _report_writes(args, engine.dialect.name, timings)
                    return
            started = time.perf_counter()
            load(args.db, args.vessels, args.reviewed)
            print(f"loaded {args.vessels} vessels + predictions, {args.reviewed} reviews in "
                  f"{time.perf_counter() - started:.1f} s (COPY)")
            timings = measure(args.db, args.claims, args.known_answer_rate, args.vessels)
        finally:
            if server is not None:
                server.stop()
    print(_machine())
    print(f"claim-next (closest to boundary), {len(timings['claim'])} claims: {_ms(timings['claim'])}")
    print(f"claim-next (most likely stalled), {len(timings['claim_stalled'])} claims: {_ms(timings['claim_stalled'])}")
    if timings["claim_known"]:
        print(f"claim-next serving a known-answer stack (rate {args.known_answer_rate}), "
              f"{len(timings['claim_known'])} claims: {_ms(timings['claim_known'])}")
    print(f"submit review, {len(timings['review'])} reviews: {_ms(timings['review'])}")
    print(f"queue counts (queue_stats), {len(timings['counts'])} calls: {_ms(timings['counts'])}")
    for suffix in (".csv", ".parquet"):
        print(f"full export {suffix}: {timings[f'export{suffix}_rows']} rows in {timings[f'export{suffix}']:.1f} s")


def _machine() -> str:
    return (f"machine: {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"python {platform.python_version()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def _report_writes(args: argparse.Namespace, backend: str, timings: dict[str, tuple[float, float]]) -> None:
    print(_machine())
    print(f"\n{args.vessels:,} stacks on {backend}\n\n| step | wall s | CPU s (this process) |\n|---|---|---|")
    for step, (wall, cpu) in timings.items():
        print(f"| {step} | {wall:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
