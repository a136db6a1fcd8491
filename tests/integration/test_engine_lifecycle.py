"""Every transition of the run lifecycle (docs/DESIGN.md section 2) through the Engine, and a
conflict for each illegal one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from graphrun import (
    IdempotencyConflict,
    RunNotFound,
    RunStatus,
    TransitionConflict,
    ValidationFailed,
    WorkflowNotFound,
)
from graphrun.errors import StaleInterrupt
from tests.conftest import EXAMPLES, EngineFactory

BIG_ORDER = {"order_id": "A1", "items": [{"sku": "tea", "qty": 2, "price": 80.0}]}
SMALL_ORDER = {"order_id": "A2", "items": [{"sku": "tea", "qty": 1, "price": 5.0}]}


async def test_small_order_runs_to_completion(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.start("orders.fulfil", SMALL_ORDER)
        # a local worker with room claims the run as it starts it
        assert (run.status, run.lease_owner, run.attempts) == (
            RunStatus.RUNNING,
            engine.settings.worker_id,
            1,
        )
        run = await engine.wait(run.id, timeout=30)
        assert run.status is RunStatus.COMPLETED
        assert run.output["status"] == "shipped"
        assert run.output["tracking"] == "trk-A2"
        assert run.finished_at is not None
        kinds = [
            (e.kind, e.data.get("status") or e.data.get("node"))
            for e in await engine.runs.events(run.id)
        ]
        assert kinds == [
            ("status", "queued"),
            ("status", "running"),
            ("node", "validate"),
            ("node", "price"),
            ("node", "reserve"),
            ("node", "ship"),
            ("status", "completed"),
        ]


async def test_wait_for_input_then_resume_completes(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)
        assert run.status is RunStatus.WAITING
        (waiting,) = run.waiting_for
        assert waiting.kind == "input"
        assert waiting.prompt == {"question": "Approve order A1 for 160.00?"}
        assert waiting.schema is not None
        assert waiting.schema["required"] == ["approved"]

        with pytest.raises(ValidationFailed) as info:
            await engine.resume(run.id, {"approved": "maybe"})
        assert info.value.errors[0]["pointer"] == "/approved"
        with pytest.raises(StaleInterrupt):
            await engine.resume(run.id, {"approved": True}, interrupt_id="not-an-interrupt")
        unchanged = await engine.get(run.id)
        assert (unchanged.status, unchanged.version) == (RunStatus.WAITING, run.version)

        resumed = await engine.resume(
            run.id, {"approved": True, "note": "ok"}, interrupt_id=waiting.id
        )
        assert resumed.status is RunStatus.RUNNING  # claimed by this engine's worker at once
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output["approved"] is True
        assert done.output["reviewer_note"] == "ok"


async def test_resume_without_a_local_worker_queues_the_run_for_any_worker(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        resumed = await engine.resume(run.id, {"approved": True})
        assert (resumed.status, resumed.lease_owner) == (RunStatus.QUEUED, None)
    async with make_engine(EXAMPLES / "orders") as engine:
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.output["approved"] is True


async def test_wait_sees_a_run_that_another_engine_completes(make_engine: EngineFactory) -> None:
    async with (
        make_engine(EXAMPLES / "orders", run_worker=False) as observer,
        make_engine(EXAMPLES / "orders") as worker,
    ):
        run = await observer.start("orders.fulfil", SMALL_ORDER)
        assert run.status is RunStatus.QUEUED
        assert worker.worker is not None
        done = await observer.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        # A zero timeout still answers from the database, not from what this engine last wrote.
        assert (await observer.wait(run.id, timeout=0)).status is RunStatus.COMPLETED


async def test_rejected_approval_takes_the_other_branch(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)
        await engine.resume(run.id, {"approved": False})
        done = await engine.wait(run.id, timeout=30)
        assert done.output["status"] == "rejected"
        assert "tracking" not in done.output


async def test_illegal_transitions_conflict_and_change_nothing(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.wait((await engine.start("orders.fulfil", SMALL_ORDER)).id, timeout=30)
        assert run.status is RunStatus.COMPLETED
        for action in (engine.resume, engine.cancel, engine.retry):
            with pytest.raises(TransitionConflict) as info:
                await action(run.id)
            assert info.value.status == "completed"
        after = await engine.get(run.id)
        assert after.version == run.version
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        queued = await engine.start("orders.fulfil", SMALL_ORDER)
        with pytest.raises(TransitionConflict):
            await engine.resume(queued.id, {"approved": True})
        with pytest.raises(TransitionConflict):
            await engine.retry(queued.id)


async def test_cancel_queued_and_waiting_runs_is_immediate(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        queued = await engine.start("orders.fulfil", SMALL_ORDER)
        cancelled = await engine.cancel(queued.id)
        assert cancelled.status is RunStatus.CANCELLED
        with pytest.raises(TransitionConflict):
            await engine.cancel(queued.id)
    async with make_engine(EXAMPLES / "orders") as engine:
        waiting = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)
        assert (await engine.cancel(waiting.id)).status is RunStatus.CANCELLED
        with pytest.raises(TransitionConflict):
            await engine.resume(waiting.id, {"approved": True})


async def test_failed_run_records_the_error_and_retry_continues_from_the_failed_node(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    marker, log = tmp_path / "marker", tmp_path / "log"
    async with make_engine("flaky") as engine:
        run = await engine.start("flaky.once", {"marker": str(marker), "log": str(log)})
        failed = await engine.wait(run.id, timeout=30)
        assert failed.status is RunStatus.FAILED
        assert failed.error is not None
        assert (failed.error.type, failed.error.node) == ("RuntimeError", "middle")
        assert failed.error.message == "marker missing"
        assert "Traceback" in failed.error.traceback
        marker.touch()
        assert (await engine.retry(run.id)).status is RunStatus.RUNNING
        done = await engine.wait(run.id, timeout=30)
        assert done.status is RunStatus.COMPLETED
        assert done.error is None
        assert done.output["steps"] == ["first", "middle", "last"]
    assert log.read_text().split() == ["first", "middle", "middle", "last"]


async def test_32_concurrent_resumes_have_exactly_one_winner(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        run = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)

        async def resume(i: int) -> str:
            try:
                await engine.resume(run.id, {"approved": True, "note": f"caller {i}"})
            except TransitionConflict:
                return "conflict"
            return "won"

        results = await asyncio.gather(*(resume(i) for i in range(32)))
        print(
            f"\nR4 concurrent resumes: winners={results.count('won')} conflicts={results.count('conflict')}"
        )
        assert results.count("won") == 1
        assert results.count("conflict") == 31
        done = await engine.wait(run.id, timeout=30)
        resumes = [e for e in await engine.runs.events(run.id) if e.kind == "resume"]
        assert len(resumes) == 1
        assert done.output["reviewer_note"].startswith("caller ")


async def test_idempotency_key_returns_the_same_run_or_conflicts(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        runs = await asyncio.gather(
            *(
                engine.start("orders.fulfil", SMALL_ORDER, idempotency_key="order-A2")
                for _ in range(32)
            )
        )
        assert len({r.id for r in runs}) == 1
        assert len((await engine.list_runs()).runs) == 1
        with pytest.raises(IdempotencyConflict) as info:
            await engine.start("orders.fulfil", BIG_ORDER, idempotency_key="order-A2")
        assert info.value.run_id == runs[0].id
        with pytest.raises(ValidationFailed):
            await engine.start("orders.fulfil", SMALL_ORDER, idempotency_key="x" * 256)
        with pytest.raises(ValidationFailed):
            await engine.start("orders.fulfil", SMALL_ORDER, idempotency_key="bad\nkey")


@pytest.mark.parametrize(
    ("value", "pointer"),
    [
        ({"order_id": "A3"}, "/items"),
        ({"order_id": "A3", "items": [{"sku": "x", "qty": "many", "price": 1}]}, "/items/0/qty"),
        ({"order_id": "A3", "items": [], "note": float("nan")}, "/note"),
        ({"order_id": "\ud800", "items": []}, "/order_id"),
        ({"order_id": "A\x003", "items": []}, "/order_id"),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(
    make_engine: EngineFactory, value: object, pointer: str
) -> None:
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        with pytest.raises(ValidationFailed) as info:
            await engine.start("orders.fulfil", value)
        assert info.value.errors[0]["pointer"] == pointer
        assert (await engine.list_runs()).runs == ()


async def test_unknown_workflow_and_run(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders", run_worker=False) as engine:
        with pytest.raises(WorkflowNotFound, match=r"orders\.fulfil"):
            await engine.start("orders.nope", {})
        with pytest.raises(RunNotFound):
            await engine.get("not-a-uuid")
        with pytest.raises(RunNotFound):
            await engine.get("01900000-0000-7000-8000-000000000000")


async def test_engine_without_app_code_validates_against_the_published_catalog(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(EXAMPLES / "orders", run_worker=False):
        pass  # publishes orders.fulfil to the catalog
    async with make_engine() as engine:
        with pytest.raises(ValidationFailed) as info:
            await engine.start("orders.fulfil", {"order_id": 5})
        assert {e["pointer"] for e in info.value.errors} >= {""}
        run = await engine.start("orders.fulfil", SMALL_ORDER)
        assert run.status is RunStatus.QUEUED
    async with make_engine(EXAMPLES / "orders") as engine:
        assert (await engine.wait(run.id, timeout=30)).status is RunStatus.COMPLETED


async def test_list_runs_filters_by_status_workflow_and_time(make_engine: EngineFactory) -> None:
    async with make_engine(EXAMPLES / "orders") as engine:
        small = await engine.wait((await engine.start("orders.fulfil", SMALL_ORDER)).id, timeout=30)
        big = await engine.wait((await engine.start("orders.fulfil", BIG_ORDER)).id, timeout=30)
        waiting = await engine.list_runs(status="waiting", workflow="orders.fulfil")
        assert [r.id for r in waiting.runs] == [big.id]
        both = await engine.list_runs(status=["waiting", "completed"])
        assert [r.id for r in both.runs] == [big.id, small.id]
        assert (await engine.list_runs(created_after=big.created_at)).runs[0].id == big.id
        assert [r.id for r in (await engine.list_runs(created_before=big.created_at)).runs] == [
            small.id
        ]
        with pytest.raises(ValidationFailed):
            await engine.list_runs(status="sleeping")
        with pytest.raises(ValidationFailed):
            await engine.list_runs(limit=10**9)


async def test_a_plain_langgraph_interrupt_works_unchanged(make_engine: EngineFactory) -> None:
    async with make_engine("plain") as engine:
        run = await engine.wait(
            (await engine.start("plain.ask", {"question": "why?"})).id, timeout=30
        )
        assert run.status is RunStatus.WAITING
        (waiting,) = run.waiting_for
        assert (waiting.kind, waiting.prompt, waiting.schema) == ("input", {"please": "why?"}, None)
        await engine.resume(run.id, ["any", "json", 1])
        done = await engine.wait(run.id, timeout=30)
        assert done.output == {"question": "why?", "answer": ["any", "json", 1]}


async def test_a_declared_input_model_validates_the_input(make_engine: EngineFactory) -> None:
    async with make_engine("plain") as engine:
        schema = engine.workflows.loaded("plain.typed")
        assert schema is not None
        assert schema.input_schema["title"] == "TypedInput"
        with pytest.raises(ValidationFailed) as info:
            await engine.start("plain.typed", {"name": "", "count": 11})
        assert {e["pointer"] for e in info.value.errors} == {"/name", "/count"}
        run = await engine.wait(
            (await engine.start("plain.typed", {"name": "ada", "count": 2})).id, timeout=30
        )
        assert run.output["greeting"] == "hello ada hello ada"
