"""Declarative YAML workflows run like the code-first graphs they describe."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from graphrun import Engine, RunStatus, ValidationFailed
from graphrun.storage import lifecycle
from graphrun.storage.schema import runs
from tests.conftest import EngineFactory

APPROVED = {"ok": True}
PAYMENT = {"ref": "T-1"}


async def drive(engine: Engine, workflow: str, input: dict[str, Any]) -> tuple[Any, list[str]]:
    """Run to the end: answer an approval wait, send the payment signal; the final state."""
    run = await engine.start(workflow, input)
    waits: list[str] = []
    while True:
        run = await engine.wait(run.id, timeout=30)
        if run.status is not RunStatus.WAITING:
            break
        (waiting,) = run.waiting_for
        waits.append(waiting.kind)
        if waiting.kind == "input":
            assert waiting.prompt == f"Approve {input['amount']} for {input['employee']}?"
            await engine.resume(run.id, APPROVED)
        elif waiting.kind == "signal":
            assert waiting.name == "paid"
            await engine.signal(run.id, "paid", PAYMENT)
        else:  # the timer wakes the run on its own: wait for its next event
            assert waiting.kind == "timer"
            last = (await engine.runs.events(run.id))[-1].id
            async for _ in engine.runs.watch(run.id, after_id=last, until_finished=True):
                break
    assert run.status is RunStatus.COMPLETED, run.error
    return run.output, waits


@pytest.mark.parametrize(
    "input",
    [
        {"employee": "ada", "amount": 40.0, "items": ["taxi"]},
        {"employee": "bob", "amount": 600.0, "items": ["hotel", "train"]},
    ],
    ids=["small", "large"],
)
async def test_a_yaml_workflow_ends_in_the_same_state_as_its_code_first_twin(
    make_engine: EngineFactory, input: dict[str, Any]
) -> None:
    async with make_engine("declared") as engine:
        declared, declared_waits = await drive(engine, "declared.expense", input)
        code, code_waits = await drive(engine, "declared.expense_code", input)
    assert declared == code
    assert declared_waits == code_waits
    assert declared["log"][-1] == f"paid {declared['total']} ref T-1"
    if input["amount"] > 100:
        assert declared_waits == ["input", "timer", "signal"]
    else:
        assert declared_waits == ["timer", "signal"]


async def test_a_rejected_claim_takes_the_route_the_function_picks(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("declared") as engine:
        run = await engine.start("declared.expense", {"employee": "eve", "amount": 900.0})
        run = await engine.wait(run.id, timeout=30)
        await engine.resume(run.id, {"ok": False})
        run = await engine.wait(run.id, timeout=30)
    assert run.status is RunStatus.COMPLETED
    assert run.output["log"] == ["checked 900.0", "rejected"]


async def test_yaml_input_schema_and_answer_schema_are_enforced(make_engine: EngineFactory) -> None:
    async with make_engine("declared") as engine:
        with pytest.raises(ValidationFailed) as info:
            await engine.start("declared.expense", {"employee": "ada", "amount": -1})
        assert info.value.errors[0]["pointer"] == "/amount"
        run = await engine.start("declared.expense", {"employee": "ada", "amount": 500.0})
        run = await engine.wait(run.id, timeout=30)
        with pytest.raises(ValidationFailed):
            await engine.resume(run.id, {"ok": "yes"})
        with pytest.raises(ValidationFailed):
            await engine.signal(run.id, "paid", {"no_ref": 1})
        workflow = await engine.workflows.published("declared.expense")
    assert workflow.input_schema["required"] == ["employee", "amount"]
    assert set(workflow.signals) == {"paid"}


async def test_a_workflow_node_runs_a_child_and_continues_with_its_final_state(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("declared") as engine:
        parent = await engine.start("declared.parent", {"n": 20})
        parent = await engine.wait(parent.id, timeout=30)
        while parent.status is RunStatus.WAITING:  # waiting for its child
            (waiting,) = parent.waiting_for
            assert waiting.kind == "workflow"
            child_id = waiting.prompt["run_id"]
            await engine.wait(child_id, timeout=30)
            parent = await engine.wait(parent.id, timeout=30)
        page = await engine.list_runs(workflow="declared.double")
    assert parent.status is RunStatus.COMPLETED, parent.error
    assert parent.output["result"] == {"n": 20, "doubled": 40}
    assert parent.output["total"] == 41
    (child,) = page.runs
    assert (child.parent_id, child.status) == (parent.id, RunStatus.COMPLETED)


@pytest.mark.parametrize(
    ("n", "error_type", "message"),
    [
        (-1, "ChildWorkflowFailed", "ended failed: ValueError: cannot double -1"),
        ("x", "ValidationFailed", "Invalid input"),
    ],
    ids=["child-fails", "invalid-child-input"],
)
async def test_a_child_that_cannot_complete_fails_its_parent(
    make_engine: EngineFactory, n: object, error_type: str, message: str
) -> None:
    async with make_engine("declared") as engine:
        parent = await engine.start("declared.parent", {"n": n})
        for _ in range(10):
            parent = await engine.wait(parent.id, timeout=30)
            if parent.status.terminal:
                break
            (waiting,) = parent.waiting_for
            await engine.wait(waiting.prompt["run_id"], timeout=30)
    assert parent.status is RunStatus.FAILED
    assert parent.error is not None
    assert parent.error.type == error_type
    assert message in parent.error.message


async def test_a_child_cancelled_by_the_lease_reaper_still_tells_its_parent(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("declared", run_worker=False) as engine:
        db = engine.db
        parent = await engine.start("declared.parent", {"n": 1})
        child = await engine.start("declared.double", {"n": 1})
        wait = {"id": "i1", "kind": "workflow", "name": f"graphrun.child.{child.id}"}

        def arrange(conn: Any) -> None:  # the parent waits; the child's worker died mid-cancel
            conn.execute(
                update(runs)
                .where(runs.c.id == parent.id)
                .values(status="waiting", waiting_for=[wait])
            )
            conn.execute(
                update(runs)
                .where(runs.c.id == child.id)
                .values(
                    status="running",
                    parent_id=parent.id,
                    cancel_requested=True,
                    lease_owner="gone",
                    lease_epoch=1,
                    lease_expires_at=0.0,
                )
            )

        await db.write(arrange)
        await lifecycle.requeue_expired(db)
        child_after, parent_after = await engine.get(child.id), await engine.get(parent.id)
    assert child_after.status is RunStatus.CANCELLED
    assert parent_after.status is RunStatus.QUEUED  # told: it continues (and fails the node)
    assert parent_after.resume is not None
    assert parent_after.resume["i1"]["payload"]["status"] == "cancelled"


async def test_yaml_retry_timeout_and_signal_timeout_do_what_they_say(
    make_engine: EngineFactory,
) -> None:
    async with make_engine("declared") as engine:
        quick = await engine.start("declared.resilient", {"slow": False})
        slow = await engine.start("declared.resilient", {"slow": True})
        slow = await engine.wait(slow.id, timeout=30)
        quick = await engine.wait(quick.id, timeout=30)
        while quick.status is RunStatus.WAITING:  # the signal wait, until its timeout
            last = (await engine.runs.events(quick.id))[-1].id
            async for _ in engine.runs.watch(quick.id, after_id=last, until_finished=True):
                break
            quick = await engine.wait(quick.id, timeout=30)
    assert quick.status is RunStatus.COMPLETED, quick.error
    assert quick.output["attempts"] == 3  # two failures retried
    assert quick.output["receipt"] is None  # no signal within 0.1 s
    assert slow.status is RunStatus.FAILED
    assert slow.error is not None
    assert (slow.error.type, slow.error.node) == ("NodeTimeout", "maybe_slow")
