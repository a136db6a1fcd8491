"""Loading an app's code: import its workflows, fail loudly, never fall back.

An app folder is the import root of its modules. Every failure raises `AppLoadError` naming
the app, the module and the cause (or `DefinitionError` for a YAML workflow, every problem
with its line); a module name already imported from elsewhere is refused rather than
silently reused. Each app gets its own `AppFunctions`: what its definitions name is looked
up in that app only.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from graphrun import errors, validation

from .declarative import read_definition
from .graph_source import CompileOptions, GraphSource, graph_source
from .input_check import check_context, check_graph_input, describe_input
from .manifest import SKIPPED_DIRS, AppManifest, WorkflowEntry, read_manifest

__all__ = ("AppFunctions", "LoadedApp", "LoadedWorkflow", "app_files", "code_version", "load_app")

#: Files graphrun itself writes into an app folder it unpacked (`snapshots`).
SKIPPED_FILES = frozenset({".graphrun-version"})
MAX_APP_BYTES = 50_000_000  # what a definition version may hold
#: Set on each app module when graphrun first loads it: the sha256 of its source then.
SOURCE_HASH_ATTR = "__graphrun_source_sha256__"


@dataclass(frozen=True, kw_only=True)
class LoadedWorkflow:
    """A workflow's definition, imported and ready to compile."""

    #: ``app.workflow``.
    name: str
    app: str
    #: The graph as the app exports it (builder, compiled graph, entrypoint or factory).
    graph: GraphSource
    #: The manifest's ``input`` model or the YAML definition's schema: stricter than the
    #: graph; returns the input normalized (raises `ValidationFailed`). Identity otherwise.
    validate_input: Callable[[Any], Any]
    #: Documents the input; enforced only when ``input_enforced`` (see `describe_input`).
    input_schema: dict[str, Any]
    #: Whether ``input_schema`` is a check (a manifest model, a YAML schema) rather than a
    #: description of what the graph takes.
    input_enforced: bool
    #: The signals the workflow accepts: ``{name: JSON Schema}``.
    signals: dict[str, dict[str, Any]]
    #: Content hash of the definition: the app's files plus the entry.
    version: str
    #: The app's code version (`code_version`) this workflow version belongs to.
    app_version: str
    #: ``python`` (a graph in code) or ``yaml``.
    kind: str

    async def checked_input(
        self, value: Any, *, config: dict[str, Any] | None = None, context: Any = None
    ) -> Any:
        """``value`` checked as LangGraph would and as the manifest asks; what to store.

        Raises:
            ValidationFailed: The manifest's model, the context schema or LangGraph's input
                step refuses it; nothing was run.
        """
        if value is None and self.graph.builder is not None:
            value = {}  # no input: a StateGraph starts from an empty state
        value = self.validate_input(value)
        check_context(self.graph, context)
        await check_graph_input(self.graph, value, config=config, context=context)
        return value


@dataclass(frozen=True, kw_only=True)
class LoadedApp:
    """An app whose workflows imported cleanly."""

    manifest: AppManifest
    workflows: tuple[LoadedWorkflow, ...]
    #: Content hash of every file of the app (`code_version`).
    version: str
    functions: AppFunctions
    #: The app's own modules this process imported (their classes may load from state).
    modules: tuple[str, ...] = ()


class AppFunctions:
    """The objects an app's definitions name (``module:attr``), looked up in that app only.

    Each app has its own: two apps with a function of the same name never see each
    other's, and two engines in one process keep separate ones.
    """

    def __init__(self, manifest: AppManifest) -> None:
        self.manifest = manifest
        self._found: dict[str, Any] = {}

    def resolve(self, target: str) -> Any:
        """The object ``module:attr`` names in this app.

        Raises:
            AppLoadError: The module fails to import, lies outside the app, or lacks ``attr``.
        """
        if target not in self._found:
            self._found[target] = _import(self.manifest, target)
        return self._found[target]

    def __contains__(self, target: object) -> bool:
        return target in self._found

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._found))


def app_files(root: Path) -> list[Path]:
    """The files that make up an app's definition, sorted; environments and caches excluded."""
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        if path.name in SKIPPED_FILES:
            continue
        files.append(path)
    return files


def code_version(root: Path) -> str:
    """Content hash of an app folder: the same files give the same version anywhere.

    Raises:
        AppLoadError: A file resolves outside the app folder (a symlink escape), or the
            app is larger than `MAX_APP_BYTES`.
    """
    digest = hashlib.sha256()
    total = 0
    for path in app_files(root):
        if not path.resolve().is_relative_to(root):
            raise errors.AppLoadError(
                root.name, None, f"{path.relative_to(root)} links outside the app folder"
            )
        data = path.read_bytes()
        total += len(data)
        if total > MAX_APP_BYTES:
            raise errors.AppLoadError(root.name, None, f"larger than {MAX_APP_BYTES} bytes")
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:32]


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
        # Last: an app's file can never shadow the standard library or an installed package
        # for the whole process; a package of the app that is shadowed is refused below.
        sys.path.append(str(root))
    if existing is None:
        _check_location(manifest, module_name, top)
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


def _check_location(manifest: AppManifest, module_name: str, top: str) -> None:
    """Refuse, before running any of it, a module that would come from outside the app."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        raise errors.AppLoadError(manifest.name, module_name, str(exc)) from exc
    if spec is None:
        raise errors.AppLoadError(manifest.name, module_name, f"no module named {top!r} in the app")
    places = [spec.origin] if spec.origin and spec.has_location else []
    places += list(spec.submodule_search_locations or [])
    outside = [p for p in places if not Path(p).resolve().is_relative_to(manifest.root)]
    if not places or outside:
        where = outside[0] if outside else "a built-in module"
        raise errors.AppLoadError(
            manifest.name,
            module_name,
            f"resolves to {where}, outside the app folder {manifest.root}",
        )


def _check_fresh(manifest: AppManifest, functions: AppFunctions) -> None:
    """Refuse to load an app whose modules changed on disk since this process imported them.

    Python keeps a module once imported: an app folder changed under a running process
    would get the new version's hash but the old code. Each app module carries the hash of
    the source it was first loaded with; a mismatch fails loudly instead.
    """
    tops = {target.split(":")[0].split(".")[0] for target in functions}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in tops:
            continue
        file = getattr(module, "__file__", None)
        if not file or not Path(file).resolve().is_relative_to(manifest.root):
            continue
        try:
            digest = hashlib.sha256(Path(file).read_bytes()).hexdigest()
        except OSError:
            continue
        seen = getattr(module, SOURCE_HASH_ATTR, None)
        if seen is None:
            setattr(module, SOURCE_HASH_ATTR, digest)
        elif seen != digest:
            raise errors.AppLoadError(
                manifest.name,
                name,
                "changed on disk since this process imported it; restart the process to load "
                "the new version (a module is never reused under another version)",
            )


def _schema_validator(schema: dict[str, Any]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        validation.validate_with_schema(value, schema, what="input")
        return value

    return validate


def _adapter_validator(adapter: TypeAdapter[Any]) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        return validation.validate_with_adapter(value, adapter, what="input")

    return validate


def _as_is(value: Any) -> Any:
    return value


def _code_first(
    manifest: AppManifest, entry: WorkflowEntry, functions: AppFunctions
) -> tuple[GraphSource, Callable[[Any], Any], dict[str, Any], dict[str, dict[str, Any]]]:
    assert entry.graph is not None
    source = graph_source(
        functions.resolve(entry.graph), entry.options, app=manifest.name, where=entry.graph
    )
    validate: Callable[[Any], Any] = _as_is
    schema = describe_input(source)
    if entry.input is not None:
        model = functions.resolve(entry.input)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise errors.AppLoadError(
                manifest.name, entry.input, "input must name a pydantic model class"
            )
        adapter: TypeAdapter[Any] = TypeAdapter(model)
        validate, schema = _adapter_validator(adapter), adapter.json_schema()
    signals: dict[str, dict[str, Any]] = {}
    for signal, declared in entry.signals:
        if isinstance(declared, dict):
            signals[signal] = declared
            continue
        signal_model = functions.resolve(declared)
        if not (isinstance(signal_model, type) and issubclass(signal_model, BaseModel)):
            raise errors.AppLoadError(
                manifest.name, declared, f"signal {signal!r} must name a pydantic model class"
            )
        signals[signal] = signal_model.model_json_schema()
    return source, validate, schema, signals


def _load_workflow(
    manifest: AppManifest, entry: WorkflowEntry, app_version: str, functions: AppFunctions
) -> LoadedWorkflow:
    if entry.definition is not None:
        declared = read_definition(
            manifest.root / entry.definition, entry.definition, functions.resolve
        )
        source = graph_source(
            declared.builder, CompileOptions(), app=manifest.name, where=entry.definition
        )
        validate: Callable[[Any], Any] = _schema_validator(declared.input_schema)
        schema, signals, kind = declared.input_schema, declared.signals, "yaml"
        enforced = True
    else:
        source, validate, schema, signals = _code_first(manifest, entry, functions)
        kind, enforced = "python", entry.input is not None
    options = f":{entry.options!r}" if entry.options != CompileOptions() else ""
    version = hashlib.sha256(
        f"{app_version}:{entry.name}:{entry.graph}:{entry.definition}:{entry.input}:"
        f"{entry.signals!r}{options}".encode()
    )
    return LoadedWorkflow(
        name=f"{manifest.name}.{entry.name}",
        app=manifest.name,
        graph=source,
        validate_input=validate,
        input_schema=schema,
        input_enforced=enforced,
        signals=signals,
        version=version.hexdigest()[:32],
        app_version=app_version,
        kind=kind,
    )


def load_app(folder: str | Path) -> LoadedApp:
    """Read an app's manifest and import each of its workflows.

    Raises:
        AppNotFound: No such folder or manifest.
        ManifestError: The manifest is invalid.
        RequirementRejected: A dependency spec breaks the install rules.
        DefinitionError: A YAML workflow is invalid (every problem, with its line).
        AppLoadError: A module failed to import or does not define what the manifest says.
    """
    manifest = read_manifest(folder)
    version = code_version(manifest.root)
    functions = AppFunctions(manifest)
    workflows, problems = [], []
    for entry in manifest.workflows:
        try:
            workflows.append(_load_workflow(manifest, entry, version, functions))
        except errors.DefinitionError as exc:  # go on: report every file's problems at once
            problems += exc.problems
    if problems:
        raise errors.DefinitionError(problems)
    _check_fresh(manifest, functions)
    return LoadedApp(
        manifest=manifest,
        workflows=tuple(workflows),
        version=version,
        functions=functions,
        modules=_app_modules(manifest.root, functions),
    )


def _app_modules(root: Path, functions: AppFunctions) -> tuple[str, ...]:
    """The app's own imported modules: its packages' files, not an environment in its folder."""
    tops = {target.split(":")[0].split(".")[0] for target in functions}
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.split(".")[0] not in tops or not file:
            continue
        path = Path(file).resolve()
        if path.is_relative_to(root) and not SKIPPED_DIRS & set(path.relative_to(root).parts):
            found.append(name)
    return tuple(sorted(found))
