"""Database access only: the database contract, its backends, schema and migrations.

Besides, one module per aggregate: runs, signals, events, checkpoints, schedules, retention.
"""

from __future__ import annotations

from .backends import open_database
from .database import Database, Listener
from .records import EventRecord, Run, RunPage, RunStatus, WaitingOn, WorkflowRecord

__all__ = (
    "Database",
    "EventRecord",
    "Listener",
    "Run",
    "RunPage",
    "RunStatus",
    "WaitingOn",
    "WorkflowRecord",
    "open_database",
)
