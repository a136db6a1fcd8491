"""Frozen records that storage returns; nothing above storage sees a database row."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from graphrun.waits import WaitingOn

__all__ = (
    "NODE_ERROR",
    "ApiKeyRecord",
    "CheckpointRecord",
    "EventRecord",
    "Fence",
    "Flush",
    "Run",
    "RunError",
    "RunPage",
    "RunStatus",
    "ScheduleRecord",
    "SignalRecord",
    "SignalSent",
    "WaitingOn",
    "WorkflowRecord",
)


class RunStatus(enum.StrEnum):
    """Where a run is in its lifecycle (docs/DESIGN.md section 2)."""

    #: Accepted, waiting for a worker to claim it.
    QUEUED = "queued"
    #: Claimed by a worker under a lease and executing.
    RUNNING = "running"
    #: Paused by an interrupt: input, a signal, or a timer.
    WAITING = "waiting"
    #: Paused by request; resumes on request.
    PAUSED = "paused"
    #: The graph finished; ``output`` holds the final state.
    COMPLETED = "completed"
    #: A step raised; ``error`` says where and why. `retry` continues it.
    FAILED = "failed"
    #: Cancelled on request.
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the run has ended (only `retry` or `fork` take it further)."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


#: The code of a failure raised by the app's own code (any exception not graphrun's).
NODE_ERROR = "node_error"


@dataclass(frozen=True, kw_only=True)
class RunError:
    """Why a run failed, with the same fields whatever failed it (a node, the engine...)."""

    #: A stable code: the `GraphrunError` code, or ``node_error`` for the app's own exception.
    code: str
    #: The exception's class name (``ConnectionError``, ``NodeTimeout``...).
    type: str
    message: str
    #: The node that raised, if a node did.
    node: str | None = None
    #: The formatted traceback, where there is one.
    traceback: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form stored in the run row and sent over the API."""
        return {
            "code": self.code,
            "type": self.type,
            "message": self.message,
            "node": self.node,
            "traceback": self.traceback,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunError:
        """Rebuild from `to_json` output (rows of older versions may lack a code)."""
        return cls(
            code=str(data.get("code") or NODE_ERROR),
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            node=data.get("node"),
            traceback=data.get("traceback"),
        )


@dataclass(frozen=True, kw_only=True)
class Run:
    """One execution of a workflow, as stored.

    The LangGraph ``thread_id`` of the run is its ``id``.
    """

    id: str
    workflow: str
    definition_version: str
    status: RunStatus
    input: Any
    output: Any = None
    #: Why the run failed, when it did.
    error: RunError | None = None
    waiting_for: tuple[WaitingOn, ...] = ()
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    #: Compare-and-set counter; bumps on every transition.
    version: int = 0
    lease_owner: str | None = None
    lease_epoch: int = 0
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    #: A pause was asked of the running run; it stops at its next step boundary.
    pause_requested: bool = False
    #: The run this one was forked from.
    forked_from: str | None = None
    #: The run whose ``workflow`` node started this one (it is told when this run ends).
    parent_id: str | None = None
    checkpoint_id: str | None = None
    #: How many times a worker claimed the run.
    attempts: int = 0
    input_hash: str = field(default="", repr=False)
    resume: dict[str, Any] | None = field(default=None, repr=False)
    #: The caller's LangGraph config (``configurable``, ``recursion_limit``, ``tags``,
    #: ``metadata``), given to every execution of the run.
    config: dict[str, Any] | None = None
    #: The caller's ``context`` (LangGraph's ``Runtime.context``), if any.
    context: Any = None
    #: ``created_at`` exactly as stored (the keyset cursor needs the stored value).
    created_ts: float = field(default=0.0, repr=False)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Run:
        """Build from a ``runs`` row mapping."""
        return cls(
            id=row["id"],
            workflow=row["workflow"],
            definition_version=row["definition_version"],
            status=RunStatus(row["status"]),
            input=row["input"],
            output=row["output"],
            error=RunError.from_json(row["error"]) if row["error"] else None,
            waiting_for=tuple(WaitingOn.from_json(w) for w in row["waiting_for"] or ()),
            idempotency_key=row["idempotency_key"],
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
            updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
            finished_at=_time(row["finished_at"]),
            version=row["version"],
            lease_owner=row["lease_owner"],
            lease_epoch=row["lease_epoch"],
            lease_expires_at=_time(row["lease_expires_at"]),
            cancel_requested=bool(row["cancel_requested"]),
            pause_requested=bool(row["pause_requested"]),
            forked_from=row["forked_from"],
            parent_id=row.get("parent_id"),
            checkpoint_id=row["checkpoint_id"],
            attempts=row["attempts"],
            input_hash=row["input_hash"],
            resume=row["resume"],
            config=row.get("config"),
            context=row.get("context"),
            created_ts=row["created_at"],
        )

    def to_json(self) -> dict[str, Any]:
        """The public JSON form of the run (API and CLI)."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "definition_version": self.definition_version,
            "status": self.status.value,
            "input": self.input,
            "output": self.output,
            "error": self.error.to_json() if self.error else None,
            "waiting_for": [w.to_json() for w in self.waiting_for],
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "attempts": self.attempts,
            "forked_from": self.forked_from,
            "parent_id": self.parent_id,
            "config": self.config,
            "context": self.context,
        }


@dataclass(frozen=True, kw_only=True)
class RunPage:
    """One page of `list_runs`; pass ``next_cursor`` back for the next page."""

    runs: tuple[Run, ...]
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """Something that happened to a run: a status change or a finished node."""

    id: int
    run_id: str
    kind: str
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> EventRecord:
        """Build from a ``run_events`` row mapping."""
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            kind=row["kind"],
            data=row["data"],
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, kw_only=True)
class WorkflowRecord:
    """A workflow version as published to the catalog by a worker."""

    name: str
    version: str
    app: str
    input_schema: dict[str, Any]
    graph: str
    published_at: datetime
    #: The signals the workflow accepts: ``{name: JSON Schema}``.
    signals: dict[str, Any] = field(default_factory=dict)
    #: The app version it belongs to (None when published by a graphrun before versions).
    app_version: str | None = None
    #: ``python`` (a graph in code) or ``yaml``.
    kind: str | None = None
    #: Whether ``input_schema`` checks a start (a manifest model, a YAML schema) rather
    #: than describes what the graph takes (LangGraph's own input step decides that).
    input_enforced: bool = True

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> WorkflowRecord:
        """Build from a ``workflows`` row mapping."""
        return cls(
            name=row["name"],
            version=row["version"],
            app=row["app"],
            input_schema=row["input_schema"],
            graph=row["graph"],
            published_at=_time(row["published_at"]),  # type: ignore[arg-type]
            signals=row["signals"] or {},
            app_version=row.get("app_version"),
            kind=row.get("kind"),
            input_enforced=row.get("input_enforced") is not False,
        )


@dataclass(frozen=True, kw_only=True)
class ApiKeyRecord:
    """An API key as stored: everything but the secret, which only its creator ever sees."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    secret_hash: str = field(default="", repr=False)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ApiKeyRecord:
        """Build from an ``api_keys`` row mapping."""
        return cls(
            id=row["id"],
            name=row["name"],
            scopes=tuple(row["scopes"]),
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
            expires_at=_time(row["expires_at"]),
            revoked_at=_time(row["revoked_at"]),
            secret_hash=row["secret_hash"],
        )

    def to_json(self) -> dict[str, Any]:
        """The public JSON form (no secret, no hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, kw_only=True)
class CheckpointRecord:
    """One checkpoint of a run, as its history shows it."""

    id: str
    #: LangGraph's super-step number (-1 is the input).
    step: int
    #: The nodes whose writes this checkpoint records (empty for the input checkpoint).
    nodes: tuple[str, ...]
    #: The nodes due to run next from here.
    next: tuple[str, ...]
    created_at: datetime | None
    #: The state's values (JSON).
    state: Any

    def to_json(self) -> dict[str, Any]:
        """The public JSON form."""
        return {
            "id": self.id,
            "step": self.step,
            "node": self.nodes[0] if len(self.nodes) == 1 else None,
            "nodes": list(self.nodes),
            "next": list(self.next),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "state": self.state,
        }


@dataclass(frozen=True, kw_only=True)
class SignalRecord:
    """A signal as stored in a run's mailbox."""

    id: int
    run_id: str
    name: str
    payload: Any
    created_at: datetime
    #: When a wait consumed it; None while it waits in the mailbox.
    consumed_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> SignalRecord:
        """Build from a ``signals`` row mapping."""
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            name=row["name"],
            payload=row["payload"],
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
            consumed_at=_time(row["consumed_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The public JSON form."""
        return {
            "id": self.id,
            "run_id": self.run_id,
            "name": self.name,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
            "consumed_at": self.consumed_at.isoformat() if self.consumed_at else None,
        }


@dataclass(frozen=True, kw_only=True)
class ScheduleRecord:
    """A schedule that starts a workflow with a fixed input at cron times or intervals."""

    id: str
    workflow: str
    #: A five-field cron expression, evaluated in ``timezone``; or None with ``interval_s``.
    cron: str | None
    interval_s: float | None
    timezone: str
    input: Any
    next_fire_at: datetime
    last_fired_at: datetime | None
    last_run_id: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ScheduleRecord:
        """Build from a ``schedules`` row mapping."""
        return cls(
            id=row["id"],
            workflow=row["workflow"],
            cron=row["cron"],
            interval_s=row["interval_s"],
            timezone=row["timezone"],
            input=row["input"],
            next_fire_at=_time(row["next_fire_at"]),  # type: ignore[arg-type]
            last_fired_at=_time(row["last_fired_at"]),
            last_run_id=row["last_run_id"],
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        )

    def to_json(self) -> dict[str, Any]:
        """The public JSON form."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "cron": self.cron,
            "interval_s": self.interval_s,
            "timezone": self.timezone,
            "input": self.input,
            "next_fire_at": self.next_fire_at.isoformat(),
            "last_fired_at": self.last_fired_at.isoformat() if self.last_fired_at else None,
            "last_run_id": self.last_run_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class SignalSent:
    """What sending a signal did: the stored signal and the run right after."""

    signal: SignalRecord
    run: Run
    #: Whether a wait consumed the signal at once (else it waits in the mailbox).
    delivered: bool

    def to_json(self) -> dict[str, Any]:
        """The public JSON form."""
        return {
            "signal": self.signal.to_json(),
            "run": self.run.to_json(),
            "delivered": self.delivered,
        }


@dataclass(frozen=True, kw_only=True)
class Fence:
    """The lease a worker holds on a run; its writes count only while it still holds it."""

    run_id: str
    owner: str
    epoch: int


@dataclass(frozen=True, kw_only=True)
class Flush:
    """Buffered rows of an execution, taken to be committed together."""

    run_id: str
    checkpoints: list[dict[str, Any]]
    writes: list[dict[str, Any]]
    events: list[tuple[str, dict[str, Any]]]

    @property
    def root_checkpoint_id(self) -> str | None:
        """The newest root-graph checkpoint among ``checkpoints``."""
        root = [c["checkpoint_id"] for c in self.checkpoints if not c["checkpoint_ns"]]
        return root[-1] if root else None
