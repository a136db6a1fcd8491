"""Every error graphrun raises, in one tree rooted at `GraphrunError`.

Branches follow what a caller does about the error, and each class carries a stable
`code` (for logs and the HTTP API) and the `http_status` the API answers with::

    GraphrunError
    ├── NotFound                      404: the thing named does not exist
    │   ├── RunNotFound
    │   ├── WorkflowNotFound
    │   ├── AppNotFound
    │   ├── CheckpointNotFound
    │   └── ScheduleNotFound
    ├── Conflict                      409: the request lost against the current state
    │   ├── TransitionConflict        illegal or lost compare-and-set on a run
    │   ├── IdempotencyConflict       same idempotency key, different input
    │   ├── StaleInterrupt            resume names an interrupt the run no longer waits on
    │   ├── SignalQueueFull           the run's mailbox is at its cap
    │   ├── ScheduleExists            a schedule id is taken
    │   ├── LeaseLost                 a worker no longer owns the run it writes to
    │   └── DefinitionChanged         the run's workflow version is not served any more
    ├── InvalidInput                  422: the request itself is wrong; nothing was written
    │   ├── ValidationFailed          input, resume value or name fails its schema
    │   ├── ManifestError             a graphrun.toml is malformed (also a ValueError)
    │   ├── DefinitionError           a declarative workflow file is wrong, every problem listed
    │   ├── RequirementRejected       an app's dependency specs break the install rules
    │   ├── MalformedBody             400: the body is not UTF-8 JSON at all
    │   ├── BodyTooLarge              413: the body exceeds the server's limit
    │   └── UnsupportedMediaType      415: the body is not application/json
    ├── AuthError                     the API caller is not allowed
    │   ├── Unauthenticated           401: no valid API key
    │   └── PermissionDenied          403: the key lacks the scope
    ├── AppLoadError                  an app's code failed to import (also an ImportError)
    ├── InstallFailed                 building an app's environment failed (the log says why)
    ├── SignalTimeout                 inside a node: wait_for_signal timed out (a TimeoutError)
    ├── ChildWorkflowFailed           inside a node: the run_workflow child failed or was cancelled
    ├── NodeTimeout                   inside a node: it ran past its timeout (a TimeoutError)
    ├── SyncCallOnLoop                a sync checkpointer/store call on the engine's loop
    ├── SerializationError            a step produced state that cannot be stored
    └── StorageError                  503: the database failed; retry later
        ├── StorageBusy               SQLite lock held past busy_timeout
        ├── StorageFull               507: disk or database full
        ├── StorageIOError            disk I/O error
        ├── DatabaseUnavailable       cannot connect
        ├── DatabaseClosed            closed (shutting down): nothing more can be written
        └── MigrationRequired         schema older than this graphrun

The class docstring is the default message.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = (
    "AppLoadError",
    "AppNotFound",
    "AuthError",
    "BodyTooLarge",
    "CheckpointNotFound",
    "ChildWorkflowFailed",
    "Conflict",
    "DatabaseClosed",
    "DatabaseUnavailable",
    "DefinitionChanged",
    "DefinitionError",
    "GraphrunError",
    "IdempotencyConflict",
    "InstallFailed",
    "InvalidInput",
    "LeaseLost",
    "MalformedBody",
    "ManifestError",
    "MigrationRequired",
    "NodeTimeout",
    "NotFound",
    "PermissionDenied",
    "RequirementRejected",
    "RunNotFound",
    "ScheduleExists",
    "ScheduleNotFound",
    "SerializationError",
    "SignalQueueFull",
    "SignalTimeout",
    "StaleInterrupt",
    "StorageBusy",
    "StorageError",
    "StorageFull",
    "StorageIOError",
    "SyncCallOnLoop",
    "TransitionConflict",
    "Unauthenticated",
    "UnsupportedMediaType",
    "ValidationFailed",
    "WorkflowNotFound",
)


class GraphrunError(Exception):
    """A graphrun operation failed."""

    #: Stable machine-readable identifier of the error kind.
    code: ClassVar[str] = "graphrun_error"
    #: HTTP status the API answers with.
    http_status: ClassVar[int] = 500

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip().splitlines()[0]
        #: Structured context (run id, expected/actual status, field errors...).
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """Return the error as the JSON body the API sends."""
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFound(GraphrunError):
    """The requested object does not exist."""

    code = "not_found"
    http_status = 404


class RunNotFound(NotFound):
    """No run has this id."""

    code = "run_not_found"

    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run has id {run_id!r}.", run_id=run_id)
        self.run_id = run_id


class WorkflowNotFound(NotFound):
    """No loaded app defines this workflow."""

    code = "workflow_not_found"

    def __init__(self, workflow: str, known: list[str] | None = None) -> None:
        hint = f" Known workflows: {', '.join(known)}." if known else ""
        super().__init__(f"No workflow named {workflow!r}.{hint}", workflow=workflow)
        self.workflow = workflow


class AppNotFound(NotFound):
    """The app folder or manifest does not exist."""

    code = "app_not_found"


class CheckpointNotFound(NotFound):
    """The run has no checkpoint with this id."""

    code = "checkpoint_not_found"

    def __init__(self, run_id: str, checkpoint_id: str) -> None:
        super().__init__(
            f"Run {run_id} has no checkpoint {checkpoint_id!r}; see its history for the ids.",
            run_id=run_id,
            checkpoint_id=checkpoint_id,
        )


class ScheduleNotFound(NotFound):
    """No schedule has this id."""

    code = "schedule_not_found"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"No schedule has id {schedule_id!r}.", schedule_id=schedule_id)
        self.schedule_id = schedule_id


class Conflict(GraphrunError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class TransitionConflict(Conflict):
    """The run is not in a state that allows this transition, or another change won the race.

    Attributes:
        run_id: The run.
        action: The transition that was refused (``resume``, ``cancel``...).
        status: The run's status when the transition was refused.
    """

    code = "invalid_transition"

    def __init__(self, run_id: str, action: str, status: str, reason: str = "") -> None:
        message = f"Cannot {action} run {run_id}: it is {status}."
        if reason:
            message = f"{message} {reason}"
        super().__init__(message, run_id=run_id, action=action, status=status)
        self.run_id = run_id
        self.action = action
        self.status = status


class IdempotencyConflict(Conflict):
    """The idempotency key was already used to start a run with a different input."""

    code = "idempotency_key_reused"

    def __init__(self, key: str, run_id: str) -> None:
        super().__init__(
            f"Idempotency key {key!r} already started run {run_id} with a different input.",
            idempotency_key=key,
            run_id=run_id,
        )
        self.run_id = run_id


class StaleInterrupt(Conflict):
    """The run no longer waits on the interrupt named in the resume."""

    code = "stale_interrupt"


class SignalQueueFull(Conflict):
    """The run's mailbox holds as many unconsumed signals as it may; this one was not stored."""

    code = "signal_queue_full"

    def __init__(self, run_id: str, limit: int) -> None:
        super().__init__(
            f"Run {run_id} already holds {limit} unconsumed signals; the signal was not stored. "
            "Send it again once the run has consumed some.",
            run_id=run_id,
            limit=limit,
        )
        self.run_id = run_id


class ScheduleExists(Conflict):
    """A schedule with this id exists already."""

    code = "schedule_exists"

    def __init__(self, schedule_id: str) -> None:
        super().__init__(
            f"A schedule with id {schedule_id!r} exists already; remove it first.",
            schedule_id=schedule_id,
        )


class LeaseLost(Conflict):
    """This worker no longer holds the lease on the run; its write was refused.

    Attributes:
        run_id: The run whose lease was lost.
        epoch: The lease epoch the writer held.
    """

    code = "lease_lost"

    def __init__(self, run_id: str, epoch: int) -> None:
        super().__init__(
            f"Lease on run {run_id} (epoch {epoch}) was lost; the write was refused.",
            run_id=run_id,
            epoch=epoch,
        )
        self.run_id = run_id
        self.epoch = epoch


class DefinitionChanged(Conflict):
    """The run was started on a workflow version that no worker here can run any more.

    A run never silently follows a changed graph: it stays as it is. graphrun keeps every
    version whose files it stored; this one's were never stored (a run from before graphrun
    kept versions, or the database lost them), so only a worker on the old app folder can
    execute it.
    """

    code = "definition_changed"

    def __init__(self, run_id: str, workflow: str, version: str, available: list[str]) -> None:
        listed = ", ".join(available) or "none"
        super().__init__(
            f"Run {run_id} was started on version {version} of {workflow!r}, which is not "
            f"available here (available: {listed}): it would continue on a changed graph. Run "
            "a worker on the old app folder for it, or start a new run.",
            run_id=run_id,
            workflow=workflow,
            version=version,
            available=available,
        )
        self.run_id = run_id
        self.workflow = workflow
        self.version = version


class InvalidInput(GraphrunError):
    """The request is invalid; nothing was changed."""

    code = "invalid_input"
    http_status = 422


class ValidationFailed(InvalidInput, ValueError):
    """A value failed validation.

    Attributes:
        errors: One entry per problem: ``{"pointer": "/field", "message": "..."}``,
            the pointer being a JSON pointer into the rejected value.
    """

    code = "validation_failed"

    def __init__(self, what: str, errors: list[dict[str, str]]) -> None:
        listed = "; ".join(f"{e['pointer'] or '/'}: {e['message']}" for e in errors)
        super().__init__(f"Invalid {what}: {listed}", errors=errors)
        self.what = what
        self.errors = errors

    def within(self, field: str) -> ValidationFailed:
        """The same problems with pointers into the body that holds the value at ``/field``."""
        return ValidationFailed(
            self.what, [{**e, "pointer": f"/{field}{e['pointer']}"} for e in self.errors]
        )


class ManifestError(InvalidInput, ValueError):
    """An app manifest (graphrun.toml) is invalid."""

    code = "invalid_manifest"


class DefinitionError(InvalidInput, ValueError):
    """A declarative workflow file is invalid.

    Attributes:
        problems: Every problem found, in file order: ``{"file", "line", "message"}``.
    """

    code = "invalid_workflow_definition"

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        listed = "\n".join(f"  {p['file']}:{p['line']}: {p['message']}" for p in problems)
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in a workflow definition:\n{listed}",
            problems=problems,
        )
        self.problems = problems


class RequirementRejected(InvalidInput, ValueError):
    """An app's dependency specs break the install rules; nothing was installed.

    Attributes:
        problems: One entry per rejected spec: ``{"spec", "message"}``.
    """

    code = "requirement_rejected"

    def __init__(self, app: str, problems: list[dict[str, str]]) -> None:
        listed = "; ".join(f"{p['spec']!r}: {p['message']}" for p in problems)
        super().__init__(f"App {app!r} dependencies rejected: {listed}", app=app, problems=problems)
        self.problems = problems


class MalformedBody(InvalidInput):
    """The request body is not valid UTF-8 JSON."""

    code = "malformed_body"
    http_status = 400


class BodyTooLarge(InvalidInput):
    """The request body is larger than the server accepts."""

    code = "body_too_large"
    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body exceeds {limit} bytes.", limit=limit)


class UnsupportedMediaType(InvalidInput):
    """The request body is not ``application/json``."""

    code = "unsupported_media_type"
    http_status = 415


class AuthError(GraphrunError):
    """The caller may not do this."""

    code = "auth_error"
    http_status = 401


class Unauthenticated(AuthError):
    """No valid API key: send ``Authorization: Bearer <key>``."""

    code = "unauthenticated"


class PermissionDenied(AuthError):
    """The API key lacks the scope this operation needs."""

    code = "permission_denied"
    http_status = 403


class AppLoadError(GraphrunError, ImportError):
    """An app's code could not be loaded.

    Attributes:
        app: The app name (or folder when the manifest is unreadable).
        module: The module that failed, if any.
    """

    code = "app_load_error"

    def __init__(self, app: str, module: str | None, cause: str) -> None:
        where = f" module {module!r}" if module else ""
        super().__init__(f"App {app!r}{where} failed to load: {cause}", app=app, module=module)
        self.app = app
        self.module = module


class InstallFailed(GraphrunError):
    """Building an app's environment failed; the app's previous environment stays in place."""

    code = "install_failed"
    http_status = 422

    def __init__(self, app: str, reason: str, log: str = "") -> None:
        super().__init__(f"Installing app {app!r} failed: {reason}", app=app, log=log[-4000:])
        self.app = app
        self.log = log


class ChildWorkflowFailed(GraphrunError):
    """Raised inside a node by `run_workflow` when the child run did not complete.

    Attributes:
        run_id: The child run.
        status: How it ended: ``failed`` or ``cancelled``.
        error: The child's error (type, message, node) when it failed.
    """

    code = "child_workflow_failed"

    def __init__(
        self, workflow: str, run_id: str, status: str, error: dict[str, Any] | None
    ) -> None:
        why = f": {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(
            f"Child run {run_id} of {workflow!r} ended {status}{why}",
            workflow=workflow,
            run_id=run_id,
            status=status,
            error=error,
        )
        self.run_id = run_id
        self.status = status
        self.error = error


class SignalTimeout(GraphrunError, TimeoutError):
    """Raised inside a node by `wait_for_signal` when its timeout passed before the signal came."""

    code = "signal_timeout"

    def __init__(self, name: str, timeout_s: float | None = None) -> None:
        super().__init__(f"No signal {name!r} arrived within the timeout.", name=name)
        self.name = name


class NodeTimeout(GraphrunError, TimeoutError):
    """Raised by a node wrapped with `graphrun.timeout` when it ran longer than allowed."""

    code = "node_timeout"

    def __init__(self, node: str, seconds: float) -> None:
        super().__init__(f"Node {node!r} did not finish within {seconds:g} s.", seconds=seconds)
        self.node = node


class SyncCallOnLoop(GraphrunError, RuntimeError):
    """A blocking call was made on the engine's event loop, where it would wait for itself.

    A sync checkpointer or store method waits for the engine's loop: call the async method
    there, or make the node a plain ``def`` (LangGraph runs it in a thread).
    """

    code = "sync_call_on_loop"


class SerializationError(GraphrunError):
    """A step produced state that cannot be serialized."""

    code = "serialization_error"
    http_status = 422


class StorageError(GraphrunError):
    """The database failed; the operation changed nothing and may be retried."""

    code = "storage_error"
    http_status = 503


class StorageBusy(StorageError):
    """The database stayed locked by another writer past the busy timeout."""

    code = "storage_busy"


class StorageFull(StorageError):
    """The database or its disk is full."""

    code = "storage_full"
    http_status = 507


class StorageIOError(StorageError):
    """The database hit a disk I/O error."""

    code = "storage_io_error"


class DatabaseUnavailable(StorageError):
    """The database cannot be reached."""

    code = "database_unavailable"


class DatabaseClosed(StorageError):
    """The database is closed: the engine is shutting down, or was never opened."""

    code = "database_closed"


class MigrationRequired(StorageError):
    """The database schema is not at the version this graphrun needs; run `graphrun db upgrade`."""

    code = "migration_required"
