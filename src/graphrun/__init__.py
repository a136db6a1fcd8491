"""graphrun: a durable workflow engine for LangGraph graphs.

Crash-safe steps, waits for people, lease-fenced workers; SQLite embedded, PostgreSQL to
scale out. Start with `Engine`.
"""

from __future__ import annotations

from graphrun.config import Settings
from graphrun.engine import Engine, wait_for_input
from graphrun.errors import (
    AppLoadError,
    Conflict,
    GraphrunError,
    IdempotencyConflict,
    InvalidInput,
    LeaseLost,
    NotFound,
    RunNotFound,
    StorageBusy,
    StorageError,
    StorageFull,
    TransitionConflict,
    ValidationFailed,
    WorkflowNotFound,
)
from graphrun.storage.records import EventRecord, Run, RunPage, RunStatus, WaitingOn

__all__ = (
    "AppLoadError",
    "Conflict",
    "Engine",
    "EventRecord",
    "GraphrunError",
    "IdempotencyConflict",
    "InvalidInput",
    "LeaseLost",
    "NotFound",
    "Run",
    "RunNotFound",
    "RunPage",
    "RunStatus",
    "Settings",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "TransitionConflict",
    "ValidationFailed",
    "WaitingOn",
    "WorkflowNotFound",
    "wait_for_input",
)
