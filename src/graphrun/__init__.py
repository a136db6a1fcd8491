"""graphrun: a durable workflow engine for LangGraph graphs.

Crash-safe steps, waits for people, lease-fenced workers; SQLite embedded, PostgreSQL to
scale out. Start with `Engine`.
"""

from __future__ import annotations

from graphrun.config import Settings
from graphrun.engine import Engine, sleep, timeout, wait_for_input, wait_for_signal
from graphrun.errors import (
    AppLoadError,
    CheckpointNotFound,
    Conflict,
    GraphrunError,
    IdempotencyConflict,
    InvalidInput,
    LeaseLost,
    NodeTimeout,
    NotFound,
    RunNotFound,
    ScheduleNotFound,
    SignalQueueFull,
    SignalTimeout,
    StorageBusy,
    StorageError,
    StorageFull,
    TransitionConflict,
    ValidationFailed,
    WorkflowNotFound,
)
from graphrun.storage.records import (
    EventRecord,
    Run,
    RunPage,
    RunStatus,
    ScheduleRecord,
    SignalRecord,
    SignalSent,
    WaitingOn,
)

__all__ = (
    "AppLoadError",
    "CheckpointNotFound",
    "Conflict",
    "Engine",
    "EventRecord",
    "GraphrunError",
    "IdempotencyConflict",
    "InvalidInput",
    "LeaseLost",
    "NodeTimeout",
    "NotFound",
    "Run",
    "RunNotFound",
    "RunPage",
    "RunStatus",
    "ScheduleNotFound",
    "ScheduleRecord",
    "Settings",
    "SignalQueueFull",
    "SignalRecord",
    "SignalSent",
    "SignalTimeout",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "TransitionConflict",
    "ValidationFailed",
    "WaitingOn",
    "WorkflowNotFound",
    "sleep",
    "timeout",
    "wait_for_input",
    "wait_for_signal",
)
