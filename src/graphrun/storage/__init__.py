"""Database access only: connections, schema, migrations and one module per aggregate."""

from __future__ import annotations

from .database import Database
from .records import EventRecord, Run, RunPage, RunStatus, WaitingOn, WorkflowRecord

__all__ = ("Database", "EventRecord", "Run", "RunPage", "RunStatus", "WaitingOn", "WorkflowRecord")
