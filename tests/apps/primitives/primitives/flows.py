"""Graphs that exercise graphrun's primitives: signals, timers, cancel, retries, fork."""

from __future__ import annotations

import asyncio
import operator
import os
import threading
import time
from typing import Annotated, NotRequired

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrun import NodeTimeout, SignalTimeout, sleep, timeout, wait_for_signal

# -- mailbox: consume `count` signals named "item", in order ---------------------------------


class Mailbox(TypedDict):
    count: int
    items: Annotated[list[int], operator.add]


def collect(state: Mailbox) -> dict[str, list[int]]:
    return {"items": [wait_for_signal("item")]}


mailbox = StateGraph(Mailbox)
mailbox.add_node("collect", collect)
mailbox.add_edge(START, "collect")
mailbox.add_conditional_edges(
    "collect", lambda s: "collect" if len(s["items"]) < s["count"] else END
)

# -- sleeper: sleep `seconds`, then finish ---------------------------------------------------


class Sleeper(TypedDict):
    seconds: float
    woke: NotRequired[bool]


def nap(state: Sleeper) -> dict[str, bool]:
    sleep(state["seconds"])
    return {"woke": True}


sleeper = StateGraph(Sleeper)
sleeper.add_node("nap", nap)
sleeper.add_edge(START, "nap")
sleeper.add_edge("nap", END)

# -- deadline: wait for an approval signal, at most `seconds` ---------------------------------


class Approval(BaseModel):
    by: str


class Deadline(TypedDict):
    seconds: float
    outcome: NotRequired[str]


def await_approval(state: Deadline) -> dict[str, str]:
    try:
        approval = wait_for_signal("approve", Approval, timeout=state["seconds"])
    except SignalTimeout:
        return {"outcome": "timed out"}
    return {"outcome": f"approved by {approval.by}"}


deadline = StateGraph(Deadline)
deadline.add_node("await_approval", await_approval)
deadline.add_edge(START, "await_approval")
deadline.add_edge("await_approval", END)

# -- hang: an async node that never finishes by itself -----------------------------------------

#: Set when the hanging node starts, and when it sees its cancellation.
HANG_ENTERED = threading.Event()
HANG_CANCELLED = threading.Event()


class Hang(TypedDict):
    x: int


async def forever(state: Hang) -> dict[str, int]:
    HANG_ENTERED.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        HANG_CANCELLED.set()
        raise
    return {"x": 1}


hang = StateGraph(Hang)
hang.add_node("forever", forever)
hang.add_edge(START, "forever")
hang.add_edge("forever", END)

# -- resilient: a node retried by LangGraph's RetryPolicy, and a node with a timeout -----------

#: Attempts of `wobbly` per run key, so a test can count them.
ATTEMPTS: dict[str, int] = {}


class Resilient(TypedDict):
    key: str
    failures: int
    slow_s: float
    done: NotRequired[bool]


def wobbly(state: Resilient) -> dict[str, bool]:
    ATTEMPTS[state["key"]] = ATTEMPTS.get(state["key"], 0) + 1
    if ATTEMPTS[state["key"]] <= state["failures"]:
        raise ConnectionError(f"attempt {ATTEMPTS[state['key']]} failed")
    return {}


async def slow(state: Resilient) -> dict[str, bool]:
    await asyncio.sleep(state["slow_s"])
    return {"done": True}


resilient = StateGraph(Resilient)
resilient.add_node(
    "wobbly",
    wobbly,
    retry_policy=RetryPolicy(
        max_attempts=3, initial_interval=0.01, jitter=False, retry_on=ConnectionError
    ),
)
resilient.add_node("slow", timeout(0.2)(slow), retry_policy=RetryPolicy(retry_on=ValueError))
resilient.add_edge(START, "wobbly")
resilient.add_edge("wobbly", "slow")
resilient.add_edge("slow", END)

__all__ = ("NodeTimeout",)

# -- chain: three steps that add to x, for fork -------------------------------------------------


class Chain(TypedDict):
    x: int
    trail: Annotated[list[str], operator.add]


def step(name: str, add: int):  # type: ignore[no-untyped-def]
    def run(state: Chain) -> dict[str, object]:
        return {"x": state["x"] + add, "trail": [name]}

    return run


chain = StateGraph(Chain)
chain.add_node("a", step("a", 1))
chain.add_node("b", step("b", 10))
chain.add_node("c", step("c", 100))
chain.add_edge(START, "a")
chain.add_edge("a", "b")
chain.add_edge("b", "c")
chain.add_edge("c", END)

# -- long: one sync node that runs for `seconds`, logging its starts (lease tests) ------------


class Long(TypedDict):
    seconds: float
    effects: str
    done: NotRequired[bool]


def work(state: Long) -> dict[str, bool]:
    with open(state["effects"], "a", encoding="utf-8") as log:
        log.write(f"start {os.getpid()}\n")
    time.sleep(state["seconds"])
    with open(state["effects"], "a", encoding="utf-8") as log:
        log.write(f"done {os.getpid()}\n")
    return {"done": True}


long = StateGraph(Long)
long.add_node("work", work)
long.add_edge(START, "work")
long.add_edge("work", END)

# -- six: six nodes that log who ran them, under which lease (the kill -9 chaos test) ---------


class Six(TypedDict):
    x: int
    effects: str
    pause: float


def _six_node(i: int):  # type: ignore[no-untyped-def]
    def run(state: Six, config: RunnableConfig) -> dict[str, int]:
        conf = config["configurable"]
        execution = conf.get("__graphrun_execution")
        epoch = execution.fence.epoch if execution is not None else -1
        where = f"{conf['thread_id']} {i} {os.getpid()} {epoch}"
        _log_line(state["effects"], f"start {where} {time.time():.6f}")
        time.sleep(state["pause"])
        _log_line(state["effects"], f"done {where} {time.time():.6f}")
        return {"x": state["x"] + 1}

    run.__name__ = f"s{i}"
    return run


def _log_line(path: str, line: str) -> None:
    # One write(2) of a short line with O_APPEND: lines from processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


six = StateGraph(Six)
for _i in range(6):
    six.add_node(f"s{_i}", _six_node(_i))
    six.add_edge(START if _i == 0 else f"s{_i - 1}", f"s{_i}")
six.add_edge("s5", END)
