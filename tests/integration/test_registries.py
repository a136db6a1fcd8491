"""Per-app registries, per-engine: nothing global to collide in."""

from __future__ import annotations

from graphrun import RunStatus
from tests.conftest import EngineFactory


async def test_two_engines_in_one_process_see_only_their_own_apps(
    make_engine: EngineFactory,
) -> None:
    first, second = (
        make_engine("linear", run_worker=False),
        make_engine("declared", run_worker=False),
    )
    async with first as one, second as two:
        assert one.workflows.loaded_names() == ["linear.ten"]
        assert all(name.startswith("declared.") for name in two.workflows.loaded_names())
        assert one.workflows.loaded("declared.expense") is None
        assert two.workflows.loaded("linear.ten") is None
        assert [a.manifest.name for a in one.apps.loaded()] == ["linear"]


async def test_a_failed_app_is_recorded_with_its_traceback_and_the_others_serve(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("broken", "linear", strict_apps=False) as engine:
        assert engine.workflows.loaded_names() == ["linear.ten"]
        failure = engine.apps.failures()["broken"]
        run = await engine.start("linear.ten", {"x": 0})
        run = await engine.wait(run.id, timeout=30)
        listed = {a.name: a for a in await engine.apps.overview()}
    assert "broken on purpose" in failure["message"]
    assert "Traceback" in failure["traceback"]
    assert run.status is RunStatus.COMPLETED
    assert listed["broken"].status == "failed"
    assert listed["broken"].error is not None
    assert "broken on purpose" in listed["broken"].error["traceback"]
    assert listed["linear"].status == "ok"
