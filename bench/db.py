"""Database benchmark: claim-next latency and full export time with a million stacks on PostgreSQL.

    python bench/db.py [--vessels 1000000] [--reviewed 20000] [--claims 300] [--db URL]

Without ``--db`` a throwaway PostgreSQL 15 server is started (as in the tests) and removed at the
end. The data are bulk-loaded with COPY: 70 % training stacks with crowd labels (1 % stalled),
30 % test stacks; one model run scoring every stack (flowing ~ Beta(1, 30), stalled ~ Beta(8, 2));
an active policy (0.05, 0.95) with k = 1; ``--reviewed`` reviews already done on the test stacks
closest to the boundary (the worst case for a queue that would step over them). Then, one
reviewer at a time (20 reviewers in turn), each round claims the next stack (timed) and reviews
it (timed); finally the full export is written to CSV and Parquet (timed).
"""

from __future__ import annotations

import argparse
import io
import logging
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.engine import make_engine, make_session_factory, run_transaction  # noqa: E402
from db.export import write_export  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.queue import claim_next, submit_review  # noqa: E402

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
            "spread": rng.uniform(0, 0.1, vessels).round(4), "out_of_fold": train,
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


def measure(url: str, claims: int) -> dict[str, list[float] | float]:
    """Claim + review rounds (each timed), then the full export to CSV and Parquet."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    timings: dict[str, list[float] | float] = {"claim": [], "review": [], "claim_stalled": []}
    for round_ in range(claims):
        user_id = 1 + round_ % REVIEWERS
        order = "stalled" if round_ % 4 == 3 else "boundary"
        started = time.perf_counter()
        stack = run_transaction(factory, lambda s: claim_next(s, user_id=user_id, order=order))
        claimed = time.perf_counter()
        run_transaction(factory, lambda s: submit_review(s, user_id=user_id, vessel_id=stack.vessel_id,
                                                         answer="flowing"))
        timings["claim_stalled" if order == "stalled" else "claim"].append(claimed - started)
        timings["review"].append(time.perf_counter() - claimed)
    with tempfile.TemporaryDirectory() as tmp, factory() as session:
        for suffix in (".csv", ".parquet"):
            started = time.perf_counter()
            summary = write_export(session, path=Path(tmp) / f"labels{suffix}")
            timings[f"export{suffix}"] = time.perf_counter() - started
            timings[f"export{suffix}_rows"] = summary.rows
    engine.dispose()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vessels", type=int, default=1_000_000)
    parser.add_argument("--reviewed", type=int, default=20_000)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--db", default=None, help="an empty PostgreSQL database URL (default: a throwaway server)")
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    server = None
    if args.db is None:
        from tests.fixtures.postgres import PostgresServer

        server = PostgresServer().start()
        server.execute("CREATE DATABASE bench")
        args.db = server.database_url("bench")
    try:
        upgrade(args.db)
        started = time.perf_counter()
        load(args.db, args.vessels, args.reviewed)
        print(f"loaded {args.vessels} vessels + predictions, {args.reviewed} reviews in "
              f"{time.perf_counter() - started:.1f} s (COPY)")
        timings = measure(args.db, args.claims)
    finally:
        if server is not None:
            server.stop()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"claim-next (closest to boundary), {len(timings['claim'])} claims: {_ms(timings['claim'])}")
    print(f"claim-next (most likely stalled), {len(timings['claim_stalled'])} claims: {_ms(timings['claim_stalled'])}")
    print(f"submit review, {len(timings['review'])} reviews: {_ms(timings['review'])}")
    for suffix in (".csv", ".parquet"):
        print(f"full export {suffix}: {timings[f'export{suffix}_rows']} rows in {timings[f'export{suffix}']:.1f} s")


if __name__ == "__main__":
    main()
