"""Request and response bodies: what `/openapi.json` publishes and every request is held to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graphrun.apps.manifest import NAME_RE, SIGNAL_NAME_RE
from graphrun.engine.runs import IDEMPOTENCY_KEY_RE
from graphrun.engine.schedules import SCHEDULE_ID_RE
from graphrun.storage.records import RunStatus

__all__ = (
    "BODY_ERRORS",
    "COMMON_ERRORS",
    "AppOut",
    "AppVersionOut",
    "CheckpointOut",
    "ErrorOut",
    "ForkIn",
    "HealthOut",
    "HistoryOut",
    "InstallIn",
    "InstallOut",
    "ResumeIn",
    "RunOut",
    "RunPageOut",
    "ScheduleIn",
    "ScheduleListOut",
    "ScheduleOut",
    "SignalIn",
    "SignalListOut",
    "SignalOut",
    "SignalSentOut",
    "StartRunIn",
    "WaitingOnOut",
    "WorkflowOut",
    "WorkflowSummaryOut",
    "error_responses",
)

#: ``app.workflow``: an app name and a workflow name, each as manifests allow them.
WORKFLOW_NAME = rf"^{NAME_RE.pattern}\.{NAME_RE.pattern}$"
#: A signal's name, as manifests declare it.
SIGNAL_NAME = rf"^{SIGNAL_NAME_RE.pattern}$"
#: The engine's rule for idempotency keys, as the OpenAPI document states it.
IDEMPOTENCY_KEY = rf"^{IDEMPOTENCY_KEY_RE.pattern}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRunIn(_In):
    """Start a run of ``workflow`` with ``input``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "workflow": "orders.fulfil",
                    "input": {"order_id": "A1", "items": [{"sku": "tea", "qty": 2, "price": 8.0}]},
                    "idempotency_key": "order-A1",
                }
            ]
        },
    )

    workflow: str = Field(pattern=WORKFLOW_NAME, max_length=127, examples=["orders.fulfil"])
    input: Any = Field(
        default=None,
        description="The run's input, as `graph.invoke` takes it: any subset of the state's "
        "keys, messages in any form LangGraph accepts; defaults to `{}`.",
    )
    config: dict[str, Any] | None = Field(
        default=None,
        description="LangGraph config for every execution of the run: `configurable` "
        "values, `recursion_limit`, `tags`, `metadata` (not `thread_id` nor checkpoint keys).",
    )
    context: Any = Field(
        default=None,
        description="The run's `Runtime.context`, checked against the graph's `context_schema`.",
    )
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY,
        description="A second start with the same key, input, config and context returns "
        "the first run.",
    )


class ResumeIn(_In):
    """Answer a waiting run's interrupt."""

    value: Any = Field(default=None, description="The answer; validated against its schema.")
    interrupt_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Which interrupt to answer; needed only when several are pending.",
    )
    answers: dict[str, Any] | None = Field(
        default=None,
        max_length=1000,
        description="Several answers in one step, `{interrupt_id: value}` (instead of "
        "`value`), as LangGraph's `Command(resume={id: value})`.",
    )


class SignalIn(_In):
    """Send a signal to a run; a `wait_for_signal(name)` consumes it, now or later."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "approve", "payload": {"by": "ana"}}]},
    )

    name: str = Field(
        pattern=SIGNAL_NAME, max_length=100, description="One the run's workflow declares."
    )
    payload: Any = Field(default=None, description="Validated against the signal's schema.")


class ForkIn(_In):
    """Fork a run from one of its checkpoints, optionally patching the state first."""

    checkpoint_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="One of the run's checkpoints (see its history); its latest by default.",
    )
    update: dict[str, Any] | None = Field(
        default=None,
        description="A state patch (an object, as a node returns), applied as if the "
        "checkpoint's node had returned it.",
    )


class ScheduleIn(_In):
    """A schedule: start ``workflow`` with ``input`` at cron times or every N seconds."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "nightly-report",
                    "workflow": "reports.daily",
                    "input": {"scope": "all"},
                    "cron": "30 2 * * *",
                    "timezone": "Europe/Riga",
                }
            ]
        },
    )

    id: str = Field(pattern=rf"^{SCHEDULE_ID_RE.pattern}$", max_length=64)
    workflow: str = Field(pattern=WORKFLOW_NAME, max_length=127)
    input: Any = Field(default=None, description="Every run's input; validated now.")
    cron: str | None = Field(
        default=None,
        max_length=255,
        description="Five fields (minute hour day-of-month month day-of-week), in `timezone`.",
    )
    every: int | None = Field(
        default=None, ge=1, le=366 * 24 * 3600, description="Or an interval in whole seconds."
    )
    timezone: str = Field(default="UTC", max_length=64, description="An IANA time zone name.")


class ScheduleOut(BaseModel):
    """A schedule, with when it fires next."""

    id: str
    workflow: str
    cron: str | None
    interval_s: float | None
    timezone: str
    input: Any
    next_fire_at: datetime
    last_fired_at: datetime | None
    last_run_id: str | None
    created_at: datetime


class ScheduleListOut(BaseModel):
    """Every schedule, by id."""

    schedules: list[ScheduleOut]


class WaitingOnOut(BaseModel):
    """One pending interrupt of a waiting run: input, a signal or a timer."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    kind: str = Field(description="`input`, `signal`, `timer`, `workflow` or `breakpoint`.")
    name: str | None = Field(default=None, description="For signals: the signal's name.")
    prompt: Any = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    wake_at: datetime | None = Field(
        default=None, description="For timers and signal waits with a timeout: when it wakes."
    )


class RunOut(BaseModel):
    """A run, as stored."""

    id: str
    workflow: str
    definition_version: str
    status: RunStatus
    input: Any
    output: Any = None
    error: dict[str, Any] | None = None
    waiting_for: list[WaitingOnOut]
    idempotency_key: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    attempts: int
    forked_from: str | None = Field(default=None, description="The run this one was forked from.")
    parent_id: str | None = Field(
        default=None, description="The run whose workflow node started this one (a child run)."
    )
    config: dict[str, Any] | None = Field(default=None, description="The caller's config.")
    context: Any = Field(default=None, description="The caller's context.")


class RunPageOut(BaseModel):
    """A page of runs, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    runs: list[RunOut]
    next_cursor: str | None


class SignalOut(BaseModel):
    """A signal in a run's mailbox."""

    id: int
    run_id: str
    name: str
    payload: Any = None
    created_at: datetime
    consumed_at: datetime | None = Field(description="When a wait consumed it; null until then.")


class SignalSentOut(BaseModel):
    """What sending a signal did: the stored signal and the run right after."""

    signal: SignalOut
    run: RunOut
    delivered: bool = Field(description="Whether a waiting node consumed it at once.")


class SignalListOut(BaseModel):
    """A run's signals, consumed or waiting, in the order sent."""

    signals: list[SignalOut]


class CheckpointOut(BaseModel):
    """One checkpoint of a run."""

    id: str
    step: int
    node: str | None = Field(description="The node that wrote it, when exactly one did.")
    nodes: list[str]
    next: list[str]
    created_at: datetime | None
    state: Any


class HistoryOut(BaseModel):
    """A run's checkpoints, newest first."""

    checkpoints: list[CheckpointOut]


class WorkflowSummaryOut(BaseModel):
    """A workflow in the catalog."""

    name: str
    version: str
    app: str
    published_at: datetime


class WorkflowOut(WorkflowSummaryOut):
    """A workflow in the catalog, with its input schema and graph."""

    input_schema: dict[str, Any]
    graph: str = Field(description="The graph as a Mermaid flowchart.")


class AppVersionOut(BaseModel):
    """One stored version of an app."""

    version: str
    created_at: str
    dependencies: list[str]
    installed_at: str | None
    lock: list[dict[str, Any]] | None
    unfinished_runs: int
    unfinished_by_workflow: dict[str, int]
    current: bool


class AppOut(BaseModel):
    """An app: its last load (``ok`` or ``failed`` with why), and its versions."""

    name: str
    status: str
    version: str | None
    error: dict[str, Any] | None
    updated_at: str | None
    versions: list[AppVersionOut]


class InstallIn(BaseModel):
    """Install an app's dependencies: the app folder, as the server sees it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00]+$")


class InstallOut(BaseModel):
    """What an install did."""

    app: str
    version: str
    environment: str
    lock: list[dict[str, Any]]
    reused: bool


class ErrorOut(BaseModel):
    """Every error the API returns."""

    code: str
    message: str
    details: dict[str, Any]


class HealthOut(BaseModel):
    """A probe's answer."""

    status: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    return {status: {"model": ErrorOut} for status in statuses}


#: What any authenticated route can answer besides its own outcomes.
COMMON_ERRORS = (401, 403, 422, 503, 507)
#: What a route with a JSON body can answer besides that.
BODY_ERRORS = (400, 413, 415)
