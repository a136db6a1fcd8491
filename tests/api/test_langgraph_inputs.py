"""LangGraph's inputs over HTTP: every message form, partial inputs, config, context, answers.

What raw LangGraph accepts, ``POST /runs`` accepts (202) and the run ends as LangGraph's
does; what LangGraph fails on is a 422 with a pointer into the body, never a 500, whatever
the input (a fuzzed one too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphrun import Engine, RunStatus
from graphrun.api import create_app
from tests.conftest import APPS, EngineFactory
from tests.fidelity.harness import Case, Stop, graph_of, normalized, under_langgraph

MESSAGE_FORMS: dict[str, Any] = {
    "role dicts": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    "tuples": [["user", "hi"], ["ai", "yo"]],
    "a string": "hi",
    "strings": ["hi", "there"],
    "message JSON": [{"type": "human", "content": "hi"}, {"type": "ai", "content": "yo"}],
    "mixed": ["hi", ["system", "brief"], {"role": "user", "content": "bye"}],
}


@pytest.fixture
async def served(make_engine: EngineFactory) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    async with make_engine(APPS / "fidelity") as engine:
        transport = httpx.ASGITransport(app=create_app(engine, auth=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://graphrun.test") as c:
            yield engine, c


async def _ended(engine: Engine, run_id: str) -> Any:
    run = await engine.wait(run_id, timeout=60)
    assert run.status is RunStatus.COMPLETED, run.error
    return normalized(run.output)


@pytest.mark.parametrize("form", list(MESSAGE_FORMS))
async def test_every_message_form_starts_a_run_that_ends_as_under_langgraph(
    served: tuple[Engine, httpx.AsyncClient], form: str
) -> None:
    engine, client = served
    body = {"workflow": "fidelity.chat", "input": {"messages": MESSAGE_FORMS[form]}}
    response = await client.post("/runs", json=body)
    assert response.status_code == 202, response.text
    expected = await under_langgraph(graph_of("chat"), Case(workflow="chat", input=body["input"]))
    assert [Stop("output", await _ended(engine, response.json()["id"]))] == expected


@pytest.mark.parametrize(
    ("workflow", "input"),
    [
        ("chat", {"messages": [["user", "only messages, no summary"]]}),
        ("typed_dict", {}),
        ("typed_dict", {"x": 1}),
        ("pydantic_state", {"x": 2}),  # the default of `note` fills in
        ("with_output", {"question": "partial"}),
    ],
)
async def test_partial_inputs_are_accepted(
    served: tuple[Engine, httpx.AsyncClient], workflow: str, input: dict[str, Any]
) -> None:
    engine, client = served
    response = await client.post("/runs", json={"workflow": f"fidelity.{workflow}", "input": input})
    assert response.status_code == 202, response.text
    expected = await under_langgraph(graph_of(workflow), Case(workflow=workflow, input=input))
    assert [Stop("output", await _ended(engine, response.json()["id"]))] == expected


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (
            {"workflow": "fidelity.chat", "input": {"messages": [{"role": "x", "content": ""}]}},
            "/input/messages",
        ),
        ({"workflow": "fidelity.chat", "input": {"messages": 5}}, "/input/messages"),
        ({"workflow": "fidelity.chat", "input": [1, 2]}, "/input"),
        ({"workflow": "fidelity.pydantic_state", "input": {"x": "abc"}}, "/input/x"),
        ({"workflow": "fidelity.pydantic_state", "input": {}}, "/input/x"),
        (
            {"workflow": "fidelity.typed_dict", "config": {"configurable": {"thread_id": "t"}}},
            "/config/configurable/thread_id",
        ),
        ({"workflow": "fidelity.typed_dict", "config": {"callbacks": []}}, "/config/callbacks"),
        (
            {"workflow": "fidelity.typed_dict", "config": {"recursion_limit": 0}},
            "/config/recursion_limit",
        ),
        (
            {"workflow": "fidelity.model_context", "context": {"user": "a", "limit": "x"}},
            "/context/limit",
        ),
    ],
)
async def test_what_langgraph_refuses_is_a_422_with_a_pointer(
    served: tuple[Engine, httpx.AsyncClient], body: dict[str, Any], pointer: str
) -> None:
    engine, client = served
    response = await client.post("/runs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert pointer in [e["pointer"] for e in response.json()["details"]["errors"]]
    assert (await engine.list_runs()).runs == ()  # nothing was stored


async def test_config_and_context_reach_the_nodes_and_are_shown_on_the_run(
    served: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = served
    body = {
        "workflow": "fidelity.after_wait",
        "config": {"configurable": {"user": "u-1"}},
        "context": {"user": "grace"},
        "idempotency_key": "once",
    }
    started = (await client.post("/runs", json=body)).json()
    assert (started["config"], started["context"]) == (body["config"], body["context"])
    again = await client.post("/runs", json=body)
    assert again.json()["id"] == started["id"]  # the same key, config and context
    other = await client.post("/runs", json={**body, "context": {"user": "ada"}})
    assert other.status_code == 409  # the same key, another context
    run = await engine.wait(started["id"], timeout=60)
    resumed = await client.post(f"/runs/{run.id}/resume", json={"value": "me"})
    assert resumed.status_code == 200, resumed.text
    assert (await _ended(engine, run.id))["seen"] == "me:grace:u-1"


async def test_several_answers_in_one_resume_and_one_bad_answer_changes_nothing(
    served: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = served
    started = (await client.post("/runs", json={"workflow": "fidelity.parallel"})).json()
    run = await engine.wait(started["id"], timeout=60)
    ids = [w.id for w in run.waiting_for]
    assert len(ids) == 2
    bad = await client.post(
        f"/runs/{run.id}/resume",
        json={"answers": {ids[0]: "ok", ids[1]: "NUL \x00 is not storable"}},
    )
    assert bad.status_code == 422
    assert bad.json()["details"]["errors"][0]["pointer"] == f"/answers/{ids[1]}"
    assert (await engine.get(run.id)).status is RunStatus.WAITING
    stale = await client.post(f"/runs/{run.id}/resume", json={"answers": {"nope": 1}})
    assert stale.status_code == 409
    both = await client.post(f"/runs/{run.id}/resume", json={"answers": {ids[0]: "a", ids[1]: "b"}})
    assert both.status_code == 200, both.text
    output = await _ended(engine, run.id)
    assert sorted(output["answers"]) == ["finance:b", "legal:a"] or sorted(output["answers"]) == [
        "finance:a",
        "legal:b",
    ]
    assert sorted(output["runs"]) == ["finance", "legal"]  # each branch ran once more, no more


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
INPUTS = JSON | st.fixed_dictionaries({"messages": JSON}) | st.fixed_dictionaries({"x": JSON})
FUZZED = ["chat", "typed_dict", "pydantic_state", "dataclass_state", "functional_plain", "sends"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(workflow=st.sampled_from(FUZZED), input=INPUTS, context=st.none() | JSON)
async def test_a_fuzzed_start_is_never_a_500(
    served: tuple[Engine, httpx.AsyncClient], workflow: str, input: Any, context: Any
) -> None:
    _, client = served
    body = {"workflow": f"fidelity.{workflow}", "input": input, "context": context}
    response = await client.post("/runs", json=body)
    assert response.status_code in (202, 422), response.text
