"""Migrations build the whole schema from nothing, remove it again, and match the models exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from db.engine import make_engine
from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base

TABLES = {"vessel", "crowd_answer", "model_run", "prediction", "triage_policy", "app_user", "review",
          "claim", "audit_event", "app_setting"}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_downgrade_to_base(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert _tables(empty_db_url) == TABLES
    downgrade(empty_db_url, "base")
    assert current_revision(empty_db_url) is None
    assert _tables(empty_db_url) == set()
    upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES


def test_autogenerate_finds_no_difference_between_models_and_migrations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_upgrading_existing_data_fills_the_queue_bookkeeping(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0001")
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        now = "2026-01-01 00:00:00"
        connection.exec_driver_sql(f"INSERT INTO vessel (id, filename, split, status, created_at) VALUES "
                                   f"(1, 'a.mp4', 'test', 'ok', '{now}'), (2, 'b.mp4', 'train', 'ok', '{now}')")
        connection.exec_driver_sql("INSERT INTO crowd_answer (vessel_id, label) VALUES (2, 1)")
        connection.exec_driver_sql(f"INSERT INTO app_user (id, name, password_hash, role, active, created_at) "
                                   f"VALUES (1, 'ann', '!', 'reviewer', true, '{now}')")
        connection.exec_driver_sql(f"INSERT INTO review (vessel_id, user_id, answer, created_at) "
                                   f"VALUES (1, 1, 'stalled', '{now}')")
        connection.exec_driver_sql(f"INSERT INTO model_run (id, name, params, metrics, created_at) "
                                   f"VALUES (1, 'r', '{{}}', '{{}}', '{now}')")
        connection.exec_driver_sql(f"INSERT INTO prediction (model_run_id, vessel_id, probability, out_of_fold, "
                                   f"created_at) VALUES (1, 1, 0.5, false, '{now}'), (1, 2, 0.5, false, '{now}')")
    engine.dispose()
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    with engine.connect() as connection:
        levels = connection.exec_driver_sql("SELECT vessel_id, review_level FROM prediction ORDER BY vessel_id").all()
    engine.dispose()
    assert [tuple(row) for row in levels] == [(1, 1), (2, None)]
    downgrade(empty_db_url, "0001")
    assert current_revision(empty_db_url) == "0001"
