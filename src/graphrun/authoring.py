"""Helpers a workflow's nodes call: thin wrappers over LangGraph's `interrupt()`.

A plain ``interrupt(value)`` works too: graphrun shows it as an ``input`` wait whose prompt
is ``value``. These helpers add what a durable engine needs on top: a schema the engine
checks *before* it accepts a resume or a signal, so an invalid one leaves the run waiting;
signals kept in a mailbox; timers that wake the run without holding a worker.

LangGraph interrupt semantics apply to all of them: when the run continues, the node runs
again from its start and the call returns the answer, so code before the call re-executes.
Keep side effects after it, or make them idempotent.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar, overload

from langgraph.types import interrupt
from pydantic import BaseModel

from graphrun import errors, validation, waits

__all__ = (
    "run_workflow",
    "sleep",
    "timeout",
    "wait_for_input",
    "wait_for_signal",
)


ModelT = TypeVar("ModelT", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")


def _schema_of(
    schema: type[BaseModel] | dict[str, Any] | None,
) -> tuple[type[BaseModel] | None, dict[str, Any] | None]:
    model = schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None
    json_schema = model.model_json_schema() if model is not None else schema
    return model, json_schema  # type: ignore[return-value]


def _answer(value: Any, model: type[BaseModel] | None, json_schema: Any, what: str) -> Any:
    if model is not None:
        return model.model_validate(value)
    validation.validate_with_schema(value, json_schema, what=what)
    return value


@overload
def wait_for_input(prompt: Any, schema: type[ModelT]) -> ModelT: ...
@overload
def wait_for_input(prompt: Any, schema: dict[str, Any] | None = None) -> Any: ...
def wait_for_input(prompt: Any, schema: type[BaseModel] | dict[str, Any] | None = None) -> Any:
    """Pause the run until a person answers; return the answer.

    The run becomes ``waiting`` with this prompt and schema in ``waiting_for``; the engine
    validates a resume value against the schema before accepting it.

    Args:
        prompt: What to show the person (any JSON value).
        schema: A pydantic model (the answer is returned as an instance of it), a JSON
            Schema dict, or None to accept any JSON value.

    Returns:
        The validated answer.
    """
    model, json_schema = _schema_of(schema)
    value = interrupt(waits.input_request(prompt, json_schema))
    return _answer(value, model, json_schema, "resume value")


@overload
def wait_for_signal(name: str, schema: type[ModelT], *, timeout: float | None = None) -> ModelT: ...
@overload
def wait_for_signal(
    name: str, schema: dict[str, Any] | None = None, *, timeout: float | None = None
) -> Any: ...
def wait_for_signal(
    name: str,
    schema: type[BaseModel] | dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
) -> Any:
    """Wait for the next signal called ``name`` sent to this run; return its payload.

    Signals wait in the run's mailbox: one sent before this call is consumed by it at once
    (the run never waits), and each signal is consumed by exactly one wait, in the order
    sent. While waiting the run holds no worker slot. The workflow must declare the signal
    (``signals`` in its manifest entry) for the engine to accept it.

    Args:
        name: The signal's name.
        schema: Checked (with the declared schema) before a signal is accepted; a pydantic
            model makes this call return an instance of it.
        timeout: Seconds to wait at most; then `SignalTimeout` is raised here.

    Raises:
        SignalTimeout: The timeout passed first.
    """
    model, json_schema = _schema_of(schema)
    wake_at = None if timeout is None else time.time() + _seconds(timeout)
    value = interrupt(waits.signal_request(name, json_schema, wake_at))
    if waits.answer_kind(value) is waits.AnswerKind.TIMEOUT:
        raise errors.SignalTimeout(name, timeout)
    return _answer(waits.answer_payload(value), model, json_schema, "signal payload")


def run_workflow(workflow: str, input: Any = None) -> Any:
    """Start a child run of ``workflow`` with ``input``, wait for it to end, return its output.

    The child is a run of its own (``parent_id`` names this one), started once: the same
    call in the same node, re-executed after a crash or on resume, finds the same child.
    While it runs this run waits, holding no worker slot. The child's input is validated
    when this node reaches the call; an invalid one fails this run.

    Raises:
        ChildWorkflowFailed: The child failed or was cancelled.
    """
    value = interrupt(waits.workflow_request(workflow, input))
    outcome = waits.answer_payload(value) if isinstance(value, dict) else None
    if not isinstance(outcome, dict):
        raise TypeError(f"run_workflow got an unexpected resume value: {value!r}")
    if outcome.get("status") != "completed":
        raise errors.ChildWorkflowFailed(
            workflow, str(outcome.get("run_id")), str(outcome.get("status")), outcome.get("error")
        )
    return outcome.get("output")


def sleep(seconds: float | None = None, *, until: datetime | None = None) -> None:
    """Sleep durably: the run waits, holding no worker slot and no memory, then continues.

    The timer survives restarts; the run wakes within a second of the due time. Give
    ``until`` (timezone-aware) for an exact time: ``seconds`` counts from the first time
    the node reaches this call.

    Raises:
        ValueError: Neither or both of ``seconds`` and ``until``, a negative duration, or
            a naive ``until``.
    """
    if (seconds is None) == (until is None):
        raise ValueError("sleep() takes seconds or until=, not both")
    if until is not None:
        if until.tzinfo is None:
            raise ValueError("sleep(until=...) needs a timezone-aware datetime")
        wake_at = until.timestamp()
    else:
        wake_at = time.time() + _seconds(seconds)
    interrupt(waits.timer_request(wake_at))


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"a duration must be a number of seconds >= 0, not {value!r}")
    return float(value)


def timeout(
    seconds: float,
) -> Callable[[Callable[P, Awaitable[R]] | Callable[P, R]], Callable[P, Awaitable[R]]]:
    """Limit how long a node may run; past it the node raises `NodeTimeout`.

    Use where the graph is declared, with LangGraph's ``RetryPolicy`` for retries::

        builder.add_node("charge", timeout(10)(charge),
                         retry_policy=RetryPolicy(max_attempts=3, retry_on=NodeTimeout))

    An async node is cancelled at the deadline. A sync node runs in a thread, which Python
    cannot stop: the step fails at the deadline and the thread finishes on its own.
    """
    limit = _seconds(seconds)

    def wrap(fn: Callable[P, Awaitable[R]] | Callable[P, R]) -> Callable[P, Awaitable[R]]:
        name = getattr(fn, "__name__", repr(fn))

        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            if inspect.iscoroutinefunction(fn):
                call: Awaitable[R] = fn(*args, **kwargs)
            else:
                call = asyncio.to_thread(fn, *args, **kwargs)  # type: ignore[arg-type]
            deadline = asyncio.timeout(limit)
            try:
                async with deadline:
                    return await call
            except TimeoutError:
                if deadline.expired():
                    raise errors.NodeTimeout(name, limit) from None
                raise  # the node's own TimeoutError

        return limited

    return wrap
