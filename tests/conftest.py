"""Shared fixtures: real SQLite files in tmp_path, engines with test-speed settings."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from graphrun import Engine, Settings
from graphrun.storage import Database, migrations, open_database
from graphrun.storage.schema import metadata

APPS = Path(__file__).parent / "apps"
EXAMPLES = Path(__file__).parent.parent / "examples"

#: Test-mode timings (docs/RELIABILITY.md section 5): short leases, fast polling.
TEST_TIMINGS: dict[str, Any] = {
    "lease_ttl_s": 2.0,
    "heartbeat_interval_s": 0.5,
    "poll_interval_s": 0.1,
}

EngineFactory = Callable[..., AbstractAsyncContextManager[Engine]]


#: Test folders whose tests run on both databases (``db_url`` is parametrised there).
BOTH_DATABASES = ("tests/integration", "tests/api", "tests/unit/storage", "tests/conformance")
ROOT = Path(__file__).parent.parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every storage, engine and API test that takes ``db_url`` on SQLite and PostgreSQL."""
    if "db_url" not in metafunc.fixturenames:
        return
    where = metafunc.definition.path.relative_to(ROOT).as_posix()
    marked = metafunc.definition.get_closest_marker
    if marked("postgres_only"):
        databases = ["postgres"]
    elif marked("both_databases") or (
        where.startswith(BOTH_DATABASES) and not marked("sqlite_only")
    ):
        databases = ["sqlite", "postgres"]
    else:
        databases = ["sqlite"]
    metafunc.parametrize("db_url", databases, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'graphrun.db'}"
    url: str = request.getfixturevalue("postgres_url")
    empty_postgres(url)
    return url


def empty_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        # A test that failed may have left connections behind: they must not block us.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        migrated = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
        version = (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()
            if migrated and migrated[0]
            else None
        )
        if version is not None and version[0] != migrations.head_revision():
            # A test moved the schema (e.g. to check /readyz): start over from nothing.
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
            return
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        ).fetchall()
        ours = [t[0] for t in tables if t[0] in metadata.tables]
        for (name,) in tables:
            if name not in metadata.tables:  # a test's own table: gone, as in a new database
                conn.execute(f'DROP TABLE "{name}" CASCADE')
        if ours:
            names = ", ".join(f'"{name}"' for name in ours)
            conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def make_engine(db_url: str, tmp_path: Path) -> EngineFactory:
    """Build an engine on the test database; apps by folder name under tests/apps."""

    def factory(
        *apps: str | Path, strict_apps: bool = True, drain: bool = False, **overrides: Any
    ) -> Engine:
        paths = [a if isinstance(a, Path) else APPS / a for a in apps]
        settings = Settings(
            database_url=db_url, home=tmp_path / "graphrun-home", **{**TEST_TIMINGS, **overrides}
        )
        return Engine(apps=paths, settings=settings, strict_apps=strict_apps, drain=drain)

    return factory


@pytest.fixture
def gated() -> Iterator[ModuleType]:
    """The gated test app's module, with its events reset."""
    if str(APPS / "gated") not in sys.path:
        sys.path.insert(0, str(APPS / "gated"))
    import gated.flows as module

    module.ENTERED.clear()
    module.GATE.clear()
    yield module
    module.GATE.set()  # never leave a thread blocked


async def entered(module: ModuleType) -> None:
    """Wait until the gated app's blocking node has started."""
    assert await asyncio.to_thread(module.ENTERED.wait, 30), "the blocking node never started"


#: Where the tests find PostgreSQL (trust auth as user postgres on this machine).
POSTGRES_ADMIN_URL = os.environ.get(
    "GRAPHRUN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards.

    Without a reachable server the tests that use it skip with the reason in the summary;
    with ``GRAPHRUN_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead, so the
    PostgreSQL half can never silently skip in CI.
    """
    import psycopg

    name = f"graphrun_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}".strip()
        if os.environ.get("GRAPHRUN_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (GRAPHRUN_REQUIRE_POSTGRES=1)")
        pytest.skip(f"SKIPPED POSTGRES TESTS: {message}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_app(*packages: str) -> None:
    """Drop an app's modules and import root from this process (tests that write apps)."""
    for name in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[name]
    for entry in [p for p in sys.path if any(Path(p, pkg).is_dir() for pkg in packages)]:
        sys.path.remove(entry)


async def finish_days_ago(engine: Engine, run_ids: list[str], days: float) -> None:
    """Make finished runs look finished ``days`` ago, counted in the totals under that day."""
    from sqlalchemy import update

    from graphrun.storage import totals
    from graphrun.storage.schema import runs

    then = time.time() - days * 86400

    def job(conn: Any) -> None:
        totals.take_out(
            engine.db, conn, conn.execute(totals.counted().where(runs.c.id.in_(run_ids))).all()
        )
        conn.execute(update(runs).where(runs.c.id.in_(run_ids)).values(finished_at=then))
        totals.add(engine.db, conn, run_ids)

    await engine.db.write(job)


async def eventually(
    check: Callable[[], object], what: str, *, timeout_s: float = 60.0, every_s: float = 0.02
) -> None:
    """Wait until ``check()`` (a value, or an awaitable of one) is true; fail after the timeout.

    For conditions no event announces (another process's writes, a counter in a patched
    function). The timeout only detects a hang: it asserts nothing about speed.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(every_s)
