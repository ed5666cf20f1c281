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


def _rows(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def test_0004_derives_roles_and_null_sides_from_a_populated_0003_database_and_back(empty_db_url: str) -> None:
    upgrade(empty_db_url, "0003")
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        now = "2026-01-01 00:00:00"
        connection.exec_driver_sql(f"INSERT INTO vessel (id, filename, split, status, created_at) VALUES "
                                   f"(1, 'a.mp4', 'train', 'ok', '{now}'), (2, 'b.mp4', 'test', 'ok', '{now}')")
        connection.exec_driver_sql(f"INSERT INTO model_run (id, name, params, metrics, created_at) "
                                   f"VALUES (1, 'r', '{{}}', '{{}}', '{now}')")
        connection.exec_driver_sql(f"INSERT INTO prediction (model_run_id, vessel_id, probability, out_of_fold, "
                                   f"review_level, created_at) VALUES (1, 1, 0.2, true, 0, '{now}'), "
                                   f"(1, 2, 0.7, false, 0, '{now}')")
        connection.exec_driver_sql(f"INSERT INTO triage_policy (id, model_run_id, t_low, t_high, reviews_required, "
                                   f"created_at, active) VALUES (1, 1, 0, 0.9, 1, '{now}', false), "
                                   f"(2, 1, 0.1, 1, 1, '{now}', false), (3, 1, 0, 1, 2, '{now}', true)")
    engine.dispose()
    upgrade(empty_db_url, "0004_prediction_role")
    assert _rows(empty_db_url, "SELECT vessel_id, role, fold, review_level FROM prediction ORDER BY vessel_id") == [
        (1, "out_of_fold", None, 0), (2, "new", None, 0)]
    assert _rows(empty_db_url, "SELECT id, t_low, t_high FROM triage_policy ORDER BY id") == [
        (1, None, 0.9), (2, 0.1, None), (3, None, None)]
    downgrade(empty_db_url, "0003")
    assert [(v, bool(flag)) for v, flag in _rows(empty_db_url, "SELECT vessel_id, out_of_fold FROM prediction "
                                                                "ORDER BY vessel_id")] == [(1, True), (2, False)]
    assert _rows(empty_db_url, "SELECT id, t_low, t_high FROM triage_policy ORDER BY id") == [
        (1, 0.0, 0.9), (2, 0.1, 1.0), (3, 0.0, 1.0)]
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
