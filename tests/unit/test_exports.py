"""The public surface: what `graphrun` and `graphrun.errors` export, pinned and complete."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from pathlib import Path

import graphrun
from graphrun import errors

SRC = Path(graphrun.__file__).parent

PINNED = (
    "ApiKeyRecord",
    "ApiKeys",
    "AppLoadError",
    "AppNotFound",
    "AppOverview",
    "Apps",
    "AuthError",
    "BodyTooLarge",
    "CheckpointNotFound",
    "CheckpointRecord",
    "ChildWorkflowFailed",
    "Conflict",
    "DatabaseClosed",
    "DatabaseUnavailable",
    "DefinitionChanged",
    "DefinitionError",
    "Engine",
    "EventRecord",
    "GraphrunError",
    "GraphrunStore",
    "IdempotencyConflict",
    "InstallFailed",
    "InstallResult",
    "InvalidInput",
    "IssuedKey",
    "LeaseLost",
    "LoadedApp",
    "LoadedWorkflow",
    "MalformedBody",
    "ManifestError",
    "MigrationRequired",
    "NodeTimeout",
    "NotFound",
    "PermissionDenied",
    "PurgeReport",
    "RequirementRejected",
    "Retention",
    "RetentionStats",
    "Run",
    "RunError",
    "RunNotFound",
    "RunPage",
    "RunService",
    "RunStatus",
    "ScheduleExists",
    "ScheduleNotFound",
    "ScheduleRecord",
    "Schedules",
    "SerializationError",
    "Settings",
    "SignalQueueFull",
    "SignalRecord",
    "SignalSent",
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
    "WaitKind",
    "WaitingOn",
    "WorkflowNotFound",
    "WorkflowRecord",
    "Workflows",
    "run_workflow",
    "sleep",
    "timeout",
    "wait_for_input",
    "wait_for_signal",
)


def _public_names(module: types.ModuleType) -> set[str]:
    """Names a module binds that are neither private, modules, nor ``annotations``."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


def test_public_api_is_pinned_and_sorted() -> None:
    assert graphrun.__all__ == PINNED
    assert list(graphrun.__all__) == sorted(graphrun.__all__)
    for name in graphrun.__all__:
        assert getattr(graphrun, name).__doc__, name


def test_all_lists_every_public_name_graphrun_binds() -> None:
    assert set(graphrun.__all__) == _public_names(graphrun)


def test_every_error_is_exported_from_errors_and_graphrun() -> None:
    defined = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.GraphrunError) and cls.__module__ == errors.__name__
    }
    assert set(errors.__all__) == defined == _public_names(errors) - {"Any", "ClassVar"}
    assert defined <= set(graphrun.__all__)
    drawn = errors.__doc__ or ""
    for name in defined:
        assert f" {name} " in drawn or drawn.rstrip().endswith(name) or f"{name}\n" in drawn, name


def test_all_of_every_module_lists_what_it_defines() -> None:
    """A module with ``__all__`` lists every public class and function it defines."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        exported: set[str] | None = None
        defined: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                exported = set(ast.literal_eval(node.value))
            elif isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            ) and not node.name.startswith("_"):
                defined.add(node.name)
        if exported is not None:
            assert defined <= exported, f"{path.relative_to(SRC)}: {sorted(defined - exported)}"


#: Returned only for tests and diagnostics, not part of the public surface.
INTERNAL_RETURNS = {"AppHost", "Worker", "Database"}


def _classes_in(annotation: object, found: set[type]) -> None:
    if typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            _classes_in(arg, found)
    elif isinstance(annotation, type):
        found.add(annotation)


def test_everything_the_engine_and_its_services_return_is_exported() -> None:
    services = [graphrun.Engine, graphrun.RunService, graphrun.Schedules, graphrun.Workflows]
    services += [graphrun.Apps, graphrun.Retention, graphrun.ApiKeys]
    missing = set()
    for service in services:
        for name, member in inspect.getmembers(service):
            function = member.fget if isinstance(member, property) else member
            if name.startswith("_") or not callable(function):
                continue
            found: set[type] = set()
            _classes_in(typing.get_type_hints(function).get("return"), found)
            missing |= {
                f"{service.__name__}.{name} -> {cls.__name__}"
                for cls in found
                if cls.__module__.startswith("graphrun")
                and cls.__name__ not in graphrun.__all__
                and cls.__name__ not in INTERNAL_RETURNS
            }
    assert missing == set()
