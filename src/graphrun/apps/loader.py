"""Loading an app's code: import its workflows, fail loudly, never fall back.

An app folder is the import root of its modules. Every failure raises `AppLoadError` naming
the app, the module and the cause; a module name already imported from elsewhere is refused
rather than silently reused.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, TypeAdapter

from graphrun import errors

from .manifest import MANIFEST_NAME, AppManifest, WorkflowEntry, read_manifest

__all__ = ("LoadedApp", "LoadedWorkflow", "load_app")


@dataclass(frozen=True, kw_only=True)
class LoadedWorkflow:
    """A workflow's definition, imported and ready to compile."""

    #: ``app.workflow``.
    name: str
    app: str
    builder: StateGraph[Any, Any, Any, Any]
    #: Validates a run's input.
    input_adapter: TypeAdapter[Any]
    input_schema: dict[str, Any]
    #: The signals the workflow accepts: ``{name: JSON Schema}``.
    signals: dict[str, dict[str, Any]]
    #: Content hash of the definition: the app's manifest and code plus the entry.
    version: str


@dataclass(frozen=True, kw_only=True)
class LoadedApp:
    """An app whose workflows imported cleanly."""

    manifest: AppManifest
    workflows: tuple[LoadedWorkflow, ...]


def _code_hash(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / MANIFEST_NAME, *sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)]
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _import(manifest: AppManifest, target: str) -> Any:
    module_name, attr = target.split(":")
    top = module_name.split(".")[0]
    root = manifest.root
    existing = sys.modules.get(top)
    if existing is not None:
        origin = Path(getattr(existing, "__file__", "") or "").resolve()
        if not origin.is_relative_to(root):
            raise errors.AppLoadError(
                manifest.name,
                module_name,
                f"a module named {top!r} is already imported from {origin}; rename the app's package",
            )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise errors.AppLoadError(
            manifest.name, module_name, "".join(traceback.format_exception_only(exc)).strip()
        ) from exc
    origin = Path(getattr(module, "__file__", "") or "").resolve()
    if not origin.is_relative_to(root):
        raise errors.AppLoadError(
            manifest.name, module_name, f"resolved to {origin}, outside the app folder {root}"
        )
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise errors.AppLoadError(
            manifest.name, module_name, f"module has no attribute {attr!r}"
        ) from exc


def _load_workflow(manifest: AppManifest, entry: WorkflowEntry, code_hash: str) -> LoadedWorkflow:
    name = f"{manifest.name}.{entry.name}"
    builder = _import(manifest, entry.graph)
    if isinstance(builder, CompiledStateGraph):
        raise errors.AppLoadError(
            manifest.name,
            entry.graph,
            "is a compiled graph; export the StateGraph builder (graphrun compiles it with "
            "its own durable checkpointer)",
        )
    if not isinstance(builder, StateGraph):
        raise errors.AppLoadError(
            manifest.name, entry.graph, f"is a {type(builder).__name__}, not a LangGraph StateGraph"
        )
    input_type: Any = builder.input_schema
    if entry.input is not None:
        input_type = _import(manifest, entry.input)
        if not (isinstance(input_type, type) and issubclass(input_type, BaseModel)):
            raise errors.AppLoadError(
                manifest.name, entry.input, "input must name a pydantic model class"
            )
    adapter: TypeAdapter[Any] = TypeAdapter(input_type)
    try:
        schema = adapter.json_schema()
    except Exception:  # a type pydantic cannot describe: validate, but publish no schema
        schema = {}
    signals: dict[str, dict[str, Any]] = {}
    for signal, declared in entry.signals:
        if isinstance(declared, dict):
            signals[signal] = declared
            continue
        model = _import(manifest, declared)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise errors.AppLoadError(
                manifest.name, declared, f"signal {signal!r} must name a pydantic model class"
            )
        signals[signal] = model.model_json_schema()
    version = hashlib.sha256(
        f"{code_hash}:{entry.name}:{entry.graph}:{entry.input}:{entry.signals!r}".encode()
    )
    return LoadedWorkflow(
        name=name,
        app=manifest.name,
        builder=builder,
        input_adapter=adapter,
        input_schema=schema,
        signals=signals,
        version=version.hexdigest()[:32],
    )


def load_app(folder: str | Path) -> LoadedApp:
    """Read an app's manifest and import each of its workflows.

    Raises:
        AppNotFound: No such folder or manifest.
        ManifestError: The manifest is invalid.
        AppLoadError: A module failed to import or does not define what the manifest says.
    """
    manifest = read_manifest(folder)
    code_hash = _code_hash(manifest.root)
    workflows = tuple(_load_workflow(manifest, e, code_hash) for e in manifest.workflows)
    return LoadedApp(manifest=manifest, workflows=workflows)
