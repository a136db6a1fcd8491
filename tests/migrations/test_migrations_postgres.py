"""The same Alembic history on PostgreSQL: one version number, the head equals schema.py."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from graphrun.storage import migrations
from graphrun.storage.schema import metadata
from tests.conftest import empty_postgres
from tests.migrations.test_migrations import assert_backfilled, finished_run_at_0006


def _engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def test_migrations_build_the_schema_module_on_postgres(postgres_url: str) -> None:
    empty_postgres(postgres_url)  # without other tests' own tables
    engine = _engine(postgres_url)
    try:
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
        with engine.begin() as conn:
            migrations.upgrade_on(conn)  # twice changes nothing
            migrations.check_current_on(conn)
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
            assert diff == []
            assert (
                MigrationContext.configure(conn).get_current_revision()
                == migrations.head_revision()
            )
            runs_input = {c["name"]: c for c in inspect(conn).get_columns("runs")}["input"]
            assert str(runs_input["type"]) == "JSONB"
            indexes = {i["name"] for i in inspect(conn).get_indexes("runs")}
            assert "ix_runs_status_created_at_id" in indexes
    finally:
        engine.dispose()


def test_migrations_go_down_and_up_again_on_postgres(postgres_url: str) -> None:
    engine = _engine(postgres_url)
    try:
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
        with engine.begin() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert tables <= {"alembic_version"}
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    finally:
        engine.dispose()


def test_migration_0007_counts_what_finished_runs_hold_on_postgres(postgres_url: str) -> None:
    empty_postgres(postgres_url)
    engine = _engine(postgres_url)
    try:
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0006")  # 0007 goes down too
        with engine.begin() as conn:
            run_id = finished_run_at_0006(conn)
        with engine.begin() as conn:
            migrations.upgrade_on(conn)
            assert_backfilled(conn, run_id)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM checkpoint_writes; DELETE FROM checkpoints;"
                    " DELETE FROM run_events; DELETE FROM signals; DELETE FROM runs"
                )
            )
    finally:
        engine.dispose()
