"""graphrun: a durable workflow engine for LangGraph graphs.

Crash-safe steps, waits for people, lease-fenced workers; SQLite embedded, PostgreSQL to
scale out. Start with `Engine`.
"""

from __future__ import annotations

from graphrun.authoring import run_workflow, sleep, timeout, wait_for_input, wait_for_signal
from graphrun.config import Settings
from graphrun.engine import Engine
from graphrun.errors import (
    AppLoadError,
    CheckpointNotFound,
    ChildWorkflowFailed,
    Conflict,
    DefinitionChanged,
    DefinitionError,
    GraphrunError,
    IdempotencyConflict,
    InstallFailed,
    InvalidInput,
    LeaseLost,
    NodeTimeout,
    NotFound,
    RequirementRejected,
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
    "ChildWorkflowFailed",
    "Conflict",
    "DefinitionChanged",
    "DefinitionError",
    "Engine",
    "EventRecord",
    "GraphrunError",
    "IdempotencyConflict",
    "InstallFailed",
    "InvalidInput",
    "LeaseLost",
    "NodeTimeout",
    "NotFound",
    "RequirementRejected",
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
    "run_workflow",
    "sleep",
    "timeout",
    "wait_for_input",
    "wait_for_signal",
)
