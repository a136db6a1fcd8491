from __future__ import annotations

import graphrun


def test_public_api_is_pinned_and_sorted() -> None:
    assert graphrun.__all__ == (
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
    assert list(graphrun.__all__) == sorted(graphrun.__all__)
    for name in graphrun.__all__:
        assert getattr(graphrun, name).__doc__, name
