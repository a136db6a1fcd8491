"""The wait protocol: what the helpers ask is what the executor reads; answers round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

from graphrun import waits
from graphrun.storage.records import RunError
from graphrun.waits import AnswerKind, WaitingOn, WaitKind


def test_every_ask_reads_back_as_its_kind() -> None:
    asks = {
        WaitKind.INPUT: waits.input_request({"q": 1}, {"type": "object"}),
        WaitKind.SIGNAL: waits.signal_request("paid", None, 1_700_000_000.0),
        WaitKind.TIMER: waits.timer_request(1_700_000_000.0),
        WaitKind.WORKFLOW: waits.workflow_request("a.b", {"x": 1}),
    }
    for kind, value in asks.items():
        assert waits.asked_kind(value) is kind
        wait = waits.read_wait("i1", value, lambda v: v)
        assert wait.kind is kind
        assert WaitingOn.from_json(wait.to_json()) == wait
    signal = waits.read_wait("i2", asks[WaitKind.SIGNAL], lambda v: v)
    assert (signal.name, signal.wake_at) == ("paid", datetime.fromtimestamp(1_700_000_000, UTC))
    assert {k for k in WaitKind if k.takes_signals} == {WaitKind.SIGNAL, WaitKind.WORKFLOW}


def test_a_plain_interrupt_or_an_unknown_marker_is_an_input_wait() -> None:
    for value in ("Approve?", {"__graphrun__": "something else", "a": 1}):
        wait = waits.read_wait("i", value, lambda v: v)
        assert (wait.kind, wait.prompt) == (WaitKind.INPUT, value)


def test_answers_say_how_the_wait_ended() -> None:
    timer = WaitingOn(id="t", kind=WaitKind.TIMER)
    signal = WaitingOn(id="s", kind=WaitKind.SIGNAL, name="paid")
    assert waits.answer_kind(waits.due_answer(timer)) is AnswerKind.TIMER
    assert waits.answer_kind(waits.due_answer(signal)) is AnswerKind.TIMEOUT
    answer = waits.signal_answer({"amount": 3})
    assert waits.answer_kind(answer) is AnswerKind.SIGNAL
    assert waits.answer_payload(answer) == {"amount": 3}
    assert waits.answer_kind({"approved": True}) is None


def test_run_error_has_the_same_keys_from_any_origin() -> None:
    old_row = {"type": "RuntimeError", "message": "boom", "node": "n"}  # before codes
    error = RunError.from_json(old_row)
    assert error.to_json() == {
        "code": "node_error",
        "type": "RuntimeError",
        "message": "boom",
        "node": "n",
        "traceback": None,
    }
    assert RunError.from_json(error.to_json()) == error
