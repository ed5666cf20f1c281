"""Migrations build the whole schema from nothing, remove it again, keep existing data, and match the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from db.engine import open_engine
from db.migrate import SchemaError, check_schema, current_revision, downgrade, ensure_schema, head_revision, upgrade
from db.models import Base

TABLES = {"vessel", "crowd_answer", "model_run", "prediction", "triage_policy", "app_user", "review",
          "claim", "audit_event", "app_setting", "project_status", "second_look"}
NOW = "2026-01-01 00:00:00"


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    """One engine on an empty database, as a command would hold it."""
    with open_engine(empty_db_url) as engine:
        yield engine


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def _rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(sql)]


def test_upgrade_from_empty_then_downgrade_to_base(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert _tables(engine) == TABLES
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert _tables(engine) == set()
    upgrade(engine)
    assert _tables(engine) == TABLES


def test_ensure_schema_creates_an_empty_database_and_refuses_an_older_or_unknown_revision(engine: Engine) -> None:
    with pytest.raises(SchemaError, match="has no tables yet"):
        check_schema(engine)
    ensure_schema(engine)
    check_schema(engine)
    downgrade(engine, "0003")
    with pytest.raises(SchemaError, match="is at schema revision 0003.*run `stalltriage db upgrade` first"):
        ensure_schema(engine)
    downgrade(engine, "base")
    _execute(engine, "INSERT INTO alembic_version VALUES ('0099_future')")  # a revision this program does not know
    with pytest.raises(SchemaError, match="does not know"):
        ensure_schema(engine)


def test_autogenerate_finds_no_difference_between_models_and_migrations(db_url: str) -> None:
    with open_engine(db_url) as engine, engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrading_existing_data_fills_the_queue_bookkeeping(engine: Engine) -> None:
    upgrade(engine, "0001")
    _execute(engine,
             f"INSERT INTO vessel (id, filename, split, status, created_at) VALUES "
             f"(1, 'a.mp4', 'test', 'ok', '{NOW}'), (2, 'b.mp4', 'train', 'ok', '{NOW}')",
             "INSERT INTO crowd_answer (vessel_id, label) VALUES (2, 1)",
             f"INSERT INTO app_user (id, name, password_hash, role, active, created_at) "
             f"VALUES (1, 'ann', '!', 'reviewer', true, '{NOW}')",
             f"INSERT INTO review (vessel_id, user_id, answer, created_at) VALUES (1, 1, 'stalled', '{NOW}')",
             f"INSERT INTO model_run (id, name, params, metrics, created_at) VALUES (1, 'r', '{{}}', '{{}}', '{NOW}')",
             f"INSERT INTO prediction (model_run_id, vessel_id, probability, out_of_fold, created_at) "
             f"VALUES (1, 1, 0.5, false, '{NOW}'), (1, 2, 0.5, false, '{NOW}')")
    upgrade(engine)
    assert _rows(engine, "SELECT vessel_id, review_level FROM prediction ORDER BY vessel_id") == [(1, 1), (2, None)]
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert _rows(engine, "SELECT count(*) FROM review") == [(1,)]  # foreign keys off: no cascade while copying


def test_0004_derives_roles_and_null_sides_from_a_populated_0003_database_and_back(engine: Engine) -> None:
    upgrade(engine, "0003")
    _execute(engine,
             f"INSERT INTO vessel (id, filename, split, status, created_at) VALUES "
             f"(1, 'a.mp4', 'train', 'ok', '{NOW}'), (2, 'b.mp4', 'test', 'ok', '{NOW}')",
             f"INSERT INTO model_run (id, name, params, metrics, created_at) VALUES (1, 'r', '{{}}', '{{}}', '{NOW}')",
             f"INSERT INTO prediction (model_run_id, vessel_id, probability, out_of_fold, review_level, created_at) "
             f"VALUES (1, 1, 0.2, true, 0, '{NOW}'), (1, 2, 0.7, false, 0, '{NOW}')",
             f"INSERT INTO triage_policy (id, model_run_id, t_low, t_high, reviews_required, created_at, active) "
             f"VALUES (1, 1, 0, 0.9, 1, '{NOW}', false), (2, 1, 0.1, 1, 1, '{NOW}', false), "
             f"(3, 1, 0, 1, 2, '{NOW}', true)")
    upgrade(engine, "0004_prediction_role")
    assert _rows(engine, "SELECT vessel_id, role, fold, review_level FROM prediction ORDER BY vessel_id") == [
        (1, "out_of_fold", None, 0), (2, "new", None, 0)]
    assert _rows(engine, "SELECT id, t_low, t_high FROM triage_policy ORDER BY id") == [
        (1, None, 0.9), (2, 0.1, None), (3, None, None)]
    downgrade(engine, "0003")
    flags = _rows(engine, "SELECT vessel_id, out_of_fold FROM prediction ORDER BY vessel_id")
    assert [(vessel, bool(flag)) for vessel, flag in flags] == [(1, True), (2, False)]
    assert _rows(engine, "SELECT id, t_low, t_high FROM triage_policy ORDER BY id") == [
        (1, 0.0, 0.9), (2, 0.1, 1.0), (3, 0.0, 1.0)]
    upgrade(engine)
    assert current_revision(engine) == head_revision()
