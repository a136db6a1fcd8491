"""The wait protocol: how a node asks to wait, how the engine reads the ask, how it answers.

A graphrun wait is a LangGraph ``interrupt()`` whose value is a dict marked with
`INTERRUPT_MARKER` and a `WaitKind`; the engine resumes it with a dict marked with an
`AnswerKind`. Both sides of the protocol live here, so the authoring helpers (which ask and
read answers), the executor (which reads asks into `WaitingOn` records) and storage (which
builds the answers of signals and timers) cannot drift apart. A plain ``interrupt(value)``
without the marker is an ``input`` wait whose prompt is ``value``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphrun.types import INTERRUPT_MARKER

__all__ = (
    "BREAKPOINT_ID",
    "INTERRUPT_MARKER",
    "AnswerKind",
    "WaitKind",
    "WaitingOn",
    "answer_kind",
    "answer_payload",
    "asked_kind",
    "breakpoint_wait",
    "continues_past_breakpoint",
    "due_answer",
    "input_request",
    "read_wait",
    "signal_answer",
    "signal_request",
    "timer_request",
    "workflow_request",
)


class WaitKind(enum.StrEnum):
    """What a waiting run waits for."""

    #: A person: `wait_for_input` or a plain ``interrupt()``; answered by ``resume``.
    INPUT = "input"
    #: A named signal (`wait_for_signal`), perhaps with a timeout.
    SIGNAL = "signal"
    #: A durable timer (`sleep`).
    TIMER = "timer"
    #: A child run's end (`run_workflow`); the child signals its parent.
    WORKFLOW = "workflow"
    #: A static breakpoint (``interrupt_before``/``interrupt_after``): ``resume`` without
    #: a value continues, as ``invoke(None)`` does in LangGraph.
    BREAKPOINT = "breakpoint"

    @property
    def takes_signals(self) -> bool:
        """Whether a signal in the run's mailbox answers this wait."""
        return self in (WaitKind.SIGNAL, WaitKind.WORKFLOW)


class AnswerKind(enum.StrEnum):
    """How the engine answered a graphrun wait (what the node's helper gets back)."""

    #: A signal arrived; ``payload`` holds it.
    SIGNAL = "signal"
    #: A `sleep` is over.
    TIMER = "timer"
    #: A `wait_for_signal` timed out.
    TIMEOUT = "timeout"


#: Kinds a node may ask for (a breakpoint is LangGraph's, never a node's).
_WAIT_KINDS = frozenset(k.value for k in WaitKind if k is not WaitKind.BREAKPOINT)
#: The id of a breakpoint wait: a run stops at one breakpoint at a time.
BREAKPOINT_ID = "breakpoint"
_ANSWER_KINDS = frozenset(k.value for k in AnswerKind)


@dataclass(frozen=True, kw_only=True)
class WaitingOn:
    """One pending interrupt of a waiting run."""

    #: The interrupt id; a resume may name it.
    id: str
    #: What it waits for.
    kind: WaitKind
    #: For signals: the signal's name (a child's end: ``graphrun.child.<run id>``).
    name: str | None = None
    #: What the node asked (any JSON value).
    prompt: Any = None
    #: JSON Schema the resume value must satisfy, if the node declared one.
    schema: dict[str, Any] | None = None
    #: For timers (and signal waits with a timeout): when the run wakes.
    wake_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the run row and sent over the API."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "name": self.name,
            "prompt": self.prompt,
            "schema": self.schema,
            "wake_at": self.wake_at.isoformat() if self.wake_at else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WaitingOn:
        """Rebuild from `to_json` output."""
        wake = data.get("wake_at")
        return cls(
            id=data["id"],
            kind=WaitKind(data.get("kind", WaitKind.INPUT)),
            name=data.get("name"),
            prompt=data.get("prompt"),
            schema=data.get("schema"),
            wake_at=datetime.fromisoformat(wake) if wake else None,
        )


# -- asking (inside a node) --------------------------------------------------------------


def input_request(prompt: Any, schema: dict[str, Any] | None) -> dict[str, Any]:
    """The interrupt value of `wait_for_input`."""
    return {INTERRUPT_MARKER: WaitKind.INPUT.value, "prompt": prompt, "schema": schema}


def signal_request(
    name: str, schema: dict[str, Any] | None, wake_at: float | None
) -> dict[str, Any]:
    """The interrupt value of `wait_for_signal` (``wake_at``: its timeout, epoch seconds)."""
    return {
        INTERRUPT_MARKER: WaitKind.SIGNAL.value,
        "name": name,
        "schema": schema,
        "wake_at": wake_at,
    }


def timer_request(wake_at: float) -> dict[str, Any]:
    """The interrupt value of `sleep`."""
    return {INTERRUPT_MARKER: WaitKind.TIMER.value, "wake_at": wake_at}


def workflow_request(workflow: str, input: Any) -> dict[str, Any]:
    """The interrupt value of `run_workflow`."""
    return {INTERRUPT_MARKER: WaitKind.WORKFLOW.value, "workflow": workflow, "input": input}


# -- reading an ask (the executor) -------------------------------------------------------


def asked_kind(value: Any) -> WaitKind | None:
    """The kind of a graphrun wait's interrupt value; None for a plain ``interrupt()``."""
    if isinstance(value, dict) and value.get(INTERRUPT_MARKER) in _WAIT_KINDS:
        return WaitKind(value[INTERRUPT_MARKER])
    return None


def read_wait(interrupt_id: str, value: Any, jsonable: Callable[[Any], Any]) -> WaitingOn:
    """What an interrupt waits on; ``jsonable`` makes its prompt JSON.

    A child run's wait (``workflow``) names its child only once the child exists: the
    executor builds that one itself.
    """
    kind = asked_kind(value)
    if kind is None:
        return WaitingOn(id=interrupt_id, kind=WaitKind.INPUT, prompt=jsonable(value))
    wake_at = value.get("wake_at")
    return WaitingOn(
        id=interrupt_id,
        kind=kind,
        name=value.get("name"),
        prompt=jsonable(value.get("prompt")),
        schema=value.get("schema"),
        wake_at=None if wake_at is None else datetime.fromtimestamp(wake_at, UTC),
    )


def breakpoint_wait(nodes: Any) -> WaitingOn:
    """The wait of a run stopped at a static breakpoint, before ``nodes`` run."""
    return WaitingOn(id=BREAKPOINT_ID, kind=WaitKind.BREAKPOINT, prompt={"nodes": sorted(nodes)})


def continues_past_breakpoint(resume: Mapping[str, Any] | None) -> bool:
    """Whether a run's stored resume answers a breakpoint (LangGraph resumes with None)."""
    return resume is not None and set(resume) == {BREAKPOINT_ID}


# -- answering (storage: signals and timers) --------------------------------------------


def signal_answer(payload: Any) -> dict[str, Any]:
    """The resume value a signal gives the wait it answers."""
    return {INTERRUPT_MARKER: AnswerKind.SIGNAL.value, "payload": payload}


def due_answer(wait: WaitingOn) -> dict[str, Any]:
    """The resume value of a wait whose time came: a sleep's end or a signal's timeout."""
    kind = AnswerKind.TIMER if wait.kind is WaitKind.TIMER else AnswerKind.TIMEOUT
    return {INTERRUPT_MARKER: kind.value}


# -- reading an answer (inside a node) ---------------------------------------------------


def answer_kind(value: Any) -> AnswerKind | None:
    """How a graphrun wait was answered; None for a person's plain resume value."""
    if isinstance(value, dict) and value.get(INTERRUPT_MARKER) in _ANSWER_KINDS:
        return AnswerKind(value[INTERRUPT_MARKER])
    return None


def answer_payload(value: Any) -> Any:
    """A signal answer's payload (a plain resume value is its own payload)."""
    return value.get("payload") if isinstance(value, dict) else value
