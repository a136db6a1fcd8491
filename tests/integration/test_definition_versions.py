"""Definition versions: a run finishes on the version it started on, or says it cannot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete

from graphrun import Engine, RunStatus
from graphrun.api import create_app
from graphrun.config import Settings
from graphrun.errors import DefinitionChanged
from graphrun.storage import apps as apps_store
from graphrun.storage.schema import app_versions
from tests.conftest import TEST_TIMINGS, forget_app

FLOW = """\
input: {{type: object, properties: {{order: {{type: string}}}}}}
state:
  tags: {{reducer: append}}
start: ask
nodes:
  ask: {{kind: input, prompt: "Ship {{order}}?", output: answer}}
  tag: {{kind: python, function: "versioned.steps:{function}"}}
edges:
  - {{from: ask, to: tag}}
"""
STEPS = """\
def tag_v1(state):
    return {"tags": ["v1"]}


def tag_v2(state):
    return {"tags": ["v2"]}
"""


def write_app(folder: Path, function: str) -> Path:
    (folder / "versioned").mkdir(parents=True, exist_ok=True)
    (folder / "versioned" / "__init__.py").write_text("")
    (folder / "versioned" / "steps.py").write_text(STEPS)
    (folder / "flow.yaml").write_text(FLOW.format(function=function))
    (folder / "graphrun.toml").write_text(
        '[app]\nname = "versioned"\n[workflows]\nship = "flow.yaml"\n'
    )
    return folder


@pytest.fixture(autouse=True)
def forget_versioned() -> Iterator[None]:
    yield
    forget_app("versioned")


def engine(db_url: str, app: Path, home: Path, **overrides: object) -> Engine:
    settings = Settings(database_url=db_url, home=home, **{**TEST_TIMINGS, **overrides})
    return Engine(apps=[app], settings=settings)


async def test_a_waiting_run_resumes_on_its_own_version_after_the_app_changed(
    db_url: str, tmp_path: Path
) -> None:
    app, home = write_app(tmp_path / "app", "tag_v1"), tmp_path / "home"
    async with engine(db_url, app, home) as v1:
        old = await v1.start("versioned.ship", {"order": "A"})
        old = await v1.wait(old.id, timeout=30)
        assert old.status is RunStatus.WAITING
        loaded = v1.workflows.loaded("versioned.ship")
        assert loaded is not None
        v1_version = loaded.version
    write_app(app, "tag_v2")  # the app changes: version 2
    async with engine(db_url, app, home) as v2:
        loaded = v2.workflows.loaded("versioned.ship")
        assert loaded is not None
        v2_version = loaded.version
        assert v2_version != v1_version
        new = await v2.start("versioned.ship", {"order": "B"})
        new = await v2.wait(new.id, timeout=30)
        await v2.resume(new.id, "yes")
        await v2.resume(old.id, "yes")  # version 1: a worker of its own takes it
        new = await v2.wait(new.id, timeout=60)
        old = await v2.wait(old.id, timeout=60)
        listed = {a.name: a for a in await v2.apps.overview()}
        keys = v2.apps.host.workers.keys
    assert (new.status, new.output["tags"], new.definition_version) == (
        RunStatus.COMPLETED,
        ["v2"],
        v2_version,
    )
    assert (old.status, old.output["tags"], old.definition_version) == (
        RunStatus.COMPLETED,
        ["v1"],
        v1_version,
    )
    assert keys == [f"versioned@{listed['versioned'].versions[1]['version']}"]
    assert [v["current"] for v in listed["versioned"].versions] == [True, False]


async def test_a_version_that_cannot_be_served_gives_definition_changed(
    db_url: str, tmp_path: Path
) -> None:
    app, home = write_app(tmp_path / "app", "tag_v1"), tmp_path / "home"
    async with engine(db_url, app, home) as v1:
        old = await v1.start("versioned.ship", {"order": "A"})
        old = await v1.wait(old.id, timeout=30)
        # its files were never stored (as for a run started before versions were kept)
        await v1.db.write(lambda conn: conn.execute(delete(app_versions)))
    write_app(app, "tag_v2")
    async with engine(db_url, app, home) as v2:
        with pytest.raises(DefinitionChanged) as info:
            await v2.resume(old.id, "yes")
        assert info.value.version == old.definition_version
        key = await v2.keys.create("admin", ["admin"])
        transport = httpx.ASGITransport(app=create_app(v2))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                f"/runs/{old.id}/resume",
                json={"value": "yes"},
                headers={"Authorization": f"Bearer {key.token}"},
            )
        after = await v2.get(old.id)
        assert not await apps_store.servable(v2.db, old.workflow, old.definition_version)
    assert answer.status_code == 409
    assert answer.json()["code"] == "definition_changed"
    assert after.status is RunStatus.WAITING  # unchanged: never mis-routed to version 2
    assert after.version == old.version


async def test_a_queued_run_whose_version_cannot_be_served_fails_with_definition_changed(
    db_url: str, tmp_path: Path
) -> None:
    app, home = write_app(tmp_path / "app", "tag_v1"), tmp_path / "home"
    async with engine(db_url, app, home, run_worker=False) as v1:
        old = await v1.start("versioned.ship", {"order": "A"})  # queued on version 1
        await v1.db.write(lambda conn: conn.execute(delete(app_versions)))
    write_app(app, "tag_v2")
    async with engine(db_url, app, home) as v2:
        old = await v2.wait(old.id, timeout=60)  # the version-2 worker never takes it
    assert old.status is RunStatus.FAILED
    assert old.error is not None
    assert old.error.type == "DefinitionChanged"
    assert "would continue on a changed graph" in old.error.message
