"""Each program runs under raw LangGraph and under graphrun; a caller must see the same.

The programs are the ``fidelity`` app (tests/apps/fidelity), written the way LangGraph's
own docs write them. For each case the test compares every stop: the interrupts (values and
count), a breakpoint, the final output, or the error's type. Cases that touch storage (the
serializer, the store, recovery) run on PostgreSQL too.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack

import pytest

from graphrun import Engine
from tests.conftest import APPS, EngineFactory

from .harness import All, Breakpoint, Case, Stop, graph_of, under_graphrun, under_langgraph

APP = APPS / "fidelity"

CASES: dict[str, Case] = {
    # -- input ----------------------------------------------------------------------------
    "typing.TypedDict on 3.11, an int for a float": Case(
        workflow="typed_dict", input={"x": 100, "seen": ["input"]}
    ),
    "partial input: no keys": Case(workflow="typed_dict", input={}),
    "unknown keys are ignored": Case(workflow="typed_dict", input={"x": 1, "nope": 2}),
    "an untyped value LangGraph does not check": Case(workflow="typed_dict", input={"x": "abc"}),
    "a non-object input": Case(workflow="typed_dict", input=5),
    "a reducer refusing its value": Case(workflow="typed_dict", input={"seen": 5}),
    "pydantic state, an int for a float": Case(workflow="pydantic_state", input={"x": 100}),
    "pydantic state, a wrong type": Case(workflow="pydantic_state", input={"x": "abc"}),
    "pydantic state, a required field missing": Case(workflow="pydantic_state", input={}),
    "dataclass state, a required field missing": Case(workflow="dataclass_state", input={}),
    "dataclass state, an untyped value": Case(workflow="dataclass_state", input={"x": "abc"}),
    "RemainingSteps is not asked for": Case(workflow="remaining_steps", input={"n": 1}),
    # -- messages --------------------------------------------------------------------------
    "messages as role dicts": Case(
        workflow="chat", input={"messages": [{"role": "user", "content": "hi"}]}
    ),
    "messages as tuples": Case(workflow="chat", input={"messages": [("user", "hi")]}),
    "messages as a string": Case(workflow="chat", input={"messages": "hi"}),
    "messages mixed, in their JSON form too": Case(
        workflow="chat",
        input={
            "messages": [
                "hi",
                ["ai", "hello"],
                {"role": "system", "content": "be brief"},
                {"type": "human", "content": "bye"},
            ]
        },
    ),
    "a message of an unknown role": Case(
        workflow="chat", input={"messages": [{"role": "bogus", "content": "hi"}]}
    ),
    "a message without content": Case(workflow="chat", input={"messages": [{"role": "user"}]}),
    "messages of the wrong type": Case(workflow="chat", input={"messages": 5}),
    "a subclass of MessagesState given only messages": Case(
        workflow="chat", input={"messages": [("user", "only messages")]}
    ),
    # -- graph shapes ----------------------------------------------------------------------
    "a StateGraph builder": Case(workflow="builder", input={"trail": ["in"]}),
    "a compiled graph": Case(workflow="compiled", input={"trail": ["in"]}),
    "a compiled graph with its own checkpointer": Case(
        workflow="compiled_with_saver", input={"trail": []}, storage=True
    ),
    "a compiled graph's interrupt_before": Case(
        workflow="compiled_breakpoint", input={"trail": []}, answers=(Breakpoint(),)
    ),
    "the manifest's interrupt_after": Case(
        workflow="manifest_breakpoint",
        input={"trail": []},
        answers=(Breakpoint(),),
        compile={"interrupt_after": ["first"]},
    ),
    "interrupt_after on the last node ends the run": Case(
        workflow="after_last_node", input={"trail": []}, compile={"interrupt_after": ["second"]}
    ),
    "an @entrypoint with @task and interrupt": Case(
        workflow="functional", input=[1, 2, 3], answers=("yes",), storage=True
    ),
    "an @entrypoint taking a number": Case(workflow="functional_plain", input=20),
    "an @entrypoint given nothing": Case(workflow="functional_plain", input=None),
    "a graph factory given the run's config": Case(
        workflow="factory", input={"trail": []}, config={"configurable": {"extra": "more"}}
    ),
    "an async graph factory": Case(workflow="async_factory", input={"trail": []}),
    "an exported create_react_agent(...), role-dict input": Case(
        workflow="agent", input={"messages": [{"role": "user", "content": "weather?"}]}
    ),
    "an interrupt inside an agent's tool": Case(
        workflow="agent",
        input={"messages": [("user", "please approve")]},
        answers=("granted",),
        storage=True,
    ),
    # -- output ----------------------------------------------------------------------------
    "output_schema": Case(workflow="with_output", input={"question": "why"}),
    "private channels stay out of the output": Case(
        workflow="with_private", input={"question": "how"}
    ),
    # -- config and context ----------------------------------------------------------------
    "configurable values reach the node": Case(
        workflow="configurable", input={}, config={"configurable": {"user": "ada"}}
    ),
    "a caller's recursion_limit": Case(
        workflow="looping", input={"n": 0}, config={"recursion_limit": 10}
    ),
    "LangGraph's default recursion_limit": Case(workflow="looping", input={"n": 0}),
    "context as Runtime.context (a dataclass)": Case(
        workflow="with_context", input={}, context={"user": "ada", "tier": "pro"}
    ),
    "context missing a required field": Case(workflow="with_context", input={}, context={}),
    "context of a pydantic schema, a wrong type": Case(
        workflow="model_context", input={}, context={"user": "ada", "limit": "lots"}
    ),
    # -- interrupts ------------------------------------------------------------------------
    "two parallel interrupts answered at once": Case(
        workflow="parallel", input={}, answers=(All(("no", "yes")),), storage=True
    ),
    "two parallel interrupts answered one by one": Case(
        workflow="parallel", input={}, answers=(All(("ok",)), All(("fine",)))
    ),
    "interrupts in Send branches": Case(
        workflow="sends", input={"items": ["a", "b", "c"]}, answers=(All(("1", "2", "3")),)
    ),
    "several interrupts in one node": Case(
        workflow="several_in_one_node", input={}, answers=("ada", 36), storage=True
    ),
    "Command(goto=...) from an answer": Case(workflow="command_goto", input={}, answers=("right",)),
    "a node's own error": Case(workflow="node_error", input={}),
    # -- subgraphs -------------------------------------------------------------------------
    "a sync node calling subgraph.invoke()": Case(
        workflow="sync_invoke", input={"value": 1}, storage=True
    ),
    "an interrupt inside a subgraph a sync node invokes": Case(
        workflow="sync_invoke_interrupt", input={"value": 1}, answers=("yes",), storage=True
    ),
    "a compiled subgraph as a node, with an interrupt": Case(
        workflow="as_node", input={"value": 2}, answers=("sure",)
    ),
    "Command(graph=Command.PARENT)": Case(workflow="to_parent", input={"value": 5}),
    "get_stream_writer() in a node": Case(workflow="stream_writer", input={}),
    # -- state values ----------------------------------------------------------------------
    "the app's own model and dataclass in untyped fields, across a wait": Case(
        workflow="app_types", input={}, answers=("yes",), storage=True, restart=True
    ),
    "a 50,000-item list, a 1.5 MB string, bytes and NaN in the final state": Case(
        workflow="large_state", input={}, storage=True
    ),
    # -- the store -------------------------------------------------------------------------
    "a store parameter, runtime.store and get_store(), across a restart": Case(
        workflow="memory", input={"user": "ada"}, answers=("hello",), storage=True, restart=True
    ),
    "config and context given again after a wait and a restart": Case(
        workflow="after_wait",
        input={},
        answers=("me",),
        config={"configurable": {"user": "u-1"}, "tags": ["t"]},
        context={"user": "grace"},
        storage=True,
        restart=True,
    ),
    "datetimes, UUIDs, Decimals and sets across a wait": Case(
        workflow="typed_values", input={}, answers=("go",), storage=True, restart=True
    ),
}


async def _compare(make_engine: EngineFactory, case: Case) -> list[Stop]:
    expected = await under_langgraph(graph_of(case.workflow), case)
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(make_engine(APP))

        async def reopen() -> Engine:
            """A new engine on the same database: the state must come back from it."""
            await stack.aclose()
            return await stack.enter_async_context(make_engine(APP))

        actual = await under_graphrun(engine, case, reopen if case.restart else None)
    assert actual == expected
    return actual


@pytest.mark.parametrize("name", list(CASES))
async def test_a_program_runs_as_under_langgraph(make_engine: EngineFactory, name: str) -> None:
    await _compare(make_engine, CASES[name])


@pytest.mark.postgres_only
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.storage])
async def test_a_program_runs_as_under_langgraph_on_postgres(
    make_engine: EngineFactory, name: str, db_url: str
) -> None:
    await _compare(make_engine, CASES[name])


def test_the_suite_covers_enough_programs() -> None:
    assert len(CASES) >= 40
    assert sys.version_info >= (3, 11)
