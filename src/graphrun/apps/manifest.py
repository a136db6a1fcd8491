"""The app manifest, ``graphrun.toml``: parsed, validated, and refused loudly when wrong."""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jsonschema

from graphrun import errors

from .graph_source import CompileOptions
from .requirements import Pin, validate_requirements

__all__ = (
    "MANIFEST_NAME",
    "AppManifest",
    "WorkflowEntry",
    "bad_module_name",
    "read_manifest",
    "shadows",
)

MANIFEST_NAME = "graphrun.toml"
#: Folders of an app that are not its definition: environments, caches, version control.
SKIPPED_DIRS = frozenset(
    {".venv", "venv", "__pycache__", ".git", ".hg", ".mypy_cache", ".ruff_cache"}
)
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: A signal's name: what `wait_for_signal(name)` and senders use.
SIGNAL_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
TARGET_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")

#: Top-level module names an app may not take: they would shadow what graphrun runs on.
RESERVED_MODULES = frozenset(
    {
        "graphrun",
        "langgraph",
        "langchain_core",
        "sqlalchemy",
        "alembic",
        "aiosqlite",
        "pydantic",
        "pydantic_core",
        "jsonschema",
        "typer",
        "click",
        "rich",
        "ormsgpack",
        "psycopg",
        "psycopg_pool",
        "yaml",
        "packaging",
        "fastapi",
        "starlette",
        "uvicorn",
        "cronsim",
    }
)


@dataclass(frozen=True, kw_only=True)
class WorkflowEntry:
    """One workflow of an app, as declared."""

    #: Workflow name within the app.
    name: str
    #: ``module:attr`` of the graph (code-first): a ``StateGraph`` builder, a compiled
    #: graph, an ``@entrypoint`` or a factory returning one; None for a YAML workflow.
    graph: str | None = None
    #: The declarative YAML file, relative to the app folder, or None.
    definition: str | None = None
    #: ``module:attr`` of a pydantic model validating the input, if not the graph's own.
    input: str | None = None
    #: The signals the workflow accepts: name to a ``module:attr`` pydantic model, or to an
    #: inline JSON Schema (``{}`` accepts any payload).
    signals: tuple[tuple[str, str | dict[str, Any]], ...] = ()
    #: Compile options for a builder (``interrupt_before``, ``interrupt_after``, ``name``).
    options: CompileOptions = field(default_factory=CompileOptions)


@dataclass(frozen=True, kw_only=True)
class AppManifest:
    """A parsed ``graphrun.toml``."""

    name: str
    root: Path
    #: The dependency specs as written.
    dependencies: tuple[str, ...]
    #: The same, validated (`validate_requirements`).
    pins: tuple[Pin, ...]
    workflows: tuple[WorkflowEntry, ...]


def _fail(path: Path, message: str) -> errors.ManifestError:
    return errors.ManifestError(f"{path}: {message}", path=str(path))


def bad_module_name(target: str) -> str | None:
    """Why ``module.path:attr`` names its module badly (each part ``[a-z][a-z0-9_]{0,62}``)."""
    for part in target.split(":")[0].split("."):
        if not NAME_RE.fullmatch(part):
            return f"module name {part!r} must match [a-z][a-z0-9_]{{0,62}}"
    return None


def shadows(target: str) -> bool:
    """Whether ``module:attr``'s top-level module would shadow the stdlib or graphrun's own."""
    top = target.split(":")[0].split(".")[0]
    return top in sys.stdlib_module_names or top in RESERVED_MODULES


def _check_target(path: Path, where: str, target: Any) -> str:
    if not isinstance(target, str) or not TARGET_RE.fullmatch(target):
        raise _fail(path, f"{where} must be 'module.path:attribute', got {target!r}")
    top = target.split(":")[0].split(".")[0]
    if (why := bad_module_name(target)) is not None:
        raise _fail(path, f"{where}: {why}")
    if shadows(target):
        raise _fail(
            path,
            f"{where}: module {top!r} would shadow the standard library or a graphrun "
            "dependency; rename the app's package",
        )
    return target


def _workflow(path: Path, name: str, value: Any) -> WorkflowEntry:
    if not NAME_RE.fullmatch(name):
        raise _fail(path, f"workflow name {name!r} must match [a-z][a-z0-9_]{{0,62}}")
    if isinstance(value, str):
        if value.endswith((".yaml", ".yml")):
            return WorkflowEntry(name=name, definition=_inside(path, f"workflow {name!r}", value))
        return WorkflowEntry(name=name, graph=_check_target(path, f"workflow {name!r}", value))
    if isinstance(value, dict):
        unknown = set(value) - {"graph", "input", "signals", *COMPILE_KEYS}
        if unknown:
            raise _fail(path, f"workflow {name!r}: unknown keys {sorted(unknown)}")
        graph = _check_target(path, f"workflow {name!r} graph", value.get("graph"))
        input_model = value.get("input")
        if input_model is not None:
            input_model = _check_target(path, f"workflow {name!r} input", input_model)
        return WorkflowEntry(
            name=name,
            graph=graph,
            input=input_model,
            signals=_signals(path, name, value.get("signals", {})),
            options=_compile_options(path, name, value),
        )
    raise _fail(path, f"workflow {name!r} must be a 'module:attr' string or a table")


#: Compile options a workflow table may set for its builder.
COMPILE_KEYS = ("interrupt_before", "interrupt_after", "name")


def _node_list(path: Path, where: str, value: Any) -> tuple[str, ...] | str | None:
    if value is None or value == "*":
        return cast("str | None", value)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _fail(path, f'{where} must be a list of node names or "*", got {value!r}')


def _compile_options(path: Path, workflow: str, value: dict[str, Any]) -> CompileOptions:
    where = f"workflow {workflow!r}"
    name = value.get("name")
    if name is not None and (not isinstance(name, str) or not name or len(name) > 200):
        raise _fail(path, f"{where} name must be a non-empty string of up to 200 characters")
    return CompileOptions(
        interrupt_before=_node_list(
            path, f"{where} interrupt_before", value.get("interrupt_before")
        ),
        interrupt_after=_node_list(path, f"{where} interrupt_after", value.get("interrupt_after")),
        name=name,
    )


def _inside(path: Path, where: str, relative: str) -> str:
    """``relative``, checked to name a file inside the app folder (no escape by ``..`` or links)."""
    root = path.parent
    if Path(relative).is_absolute() or "\\" in relative or ".." in Path(relative).parts:
        raise _fail(path, f"{where}: {relative!r} must be a path inside the app folder")
    if SKIPPED_DIRS & set(Path(relative).parts):
        raise _fail(path, f"{where}: {relative!r} lies in a folder that is not part of the app")
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise _fail(path, f"{where}: {relative!r} resolves to {target}, outside the app folder")
    if not target.is_file():
        raise _fail(path, f"{where}: {relative!r} does not exist")
    return relative


def _signals(path: Path, workflow: str, value: Any) -> tuple[tuple[str, str | dict[str, Any]], ...]:
    if not isinstance(value, dict):
        raise _fail(path, f"workflow {workflow!r} signals must be a table of name = schema")
    declared: list[tuple[str, str | dict[str, Any]]] = []
    for signal, schema in value.items():
        where = f"workflow {workflow!r} signal {signal!r}"
        if not SIGNAL_NAME_RE.fullmatch(signal):
            raise _fail(path, f"{where}: a name must match {SIGNAL_NAME_RE.pattern}")
        if isinstance(schema, dict):
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise _fail(path, f"{where}: not a valid JSON Schema: {exc.message}") from exc
            declared.append((signal, schema))
        else:
            declared.append((signal, _check_target(path, where, schema)))
    return tuple(declared)


def read_manifest(folder: str | Path) -> AppManifest:
    """Read and validate an app folder's manifest.

    Raises:
        AppNotFound: The folder or its graphrun.toml does not exist.
        ManifestError: The manifest is malformed; the message names the problem.
        RequirementRejected: A dependency spec breaks the install rules.
    """
    try:
        root = Path(folder).resolve()
        path = root / MANIFEST_NAME
        if not root.is_dir():
            raise errors.AppNotFound(f"App folder {root} does not exist.", path=str(root))
        if not path.is_file():
            raise errors.AppNotFound(f"{root} has no {MANIFEST_NAME}.", path=str(root))
    except (OSError, ValueError) as exc:  # a name too long, a NUL, a loop of links
        raise errors.AppNotFound(f"App folder {folder!s:.200} cannot be read: {exc}") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid TOML: {exc}") from exc
    unknown = set(data) - {"app", "workflows"}
    if unknown:
        raise _fail(path, f"unknown sections {sorted(unknown)}")
    app = data.get("app")
    if not isinstance(app, dict):
        raise _fail(path, "missing [app] section")
    name = app.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _fail(path, f"[app] name must match [a-z][a-z0-9_]{{0,62}}, got {name!r}")
    if shadows(name):
        raise _fail(
            path, f"[app] name {name!r} is a module of the standard library or of graphrun's own"
        )
    unknown = set(app) - {"name", "dependencies"}
    if unknown:
        raise _fail(path, f"[app] has unknown keys {sorted(unknown)}")
    deps = app.get("dependencies", [])
    if not isinstance(deps, list):
        raise _fail(path, "[app] dependencies must be a list of strings")
    pins = validate_requirements(deps, app=name)
    workflows = data.get("workflows")
    if not isinstance(workflows, dict) or not workflows:
        raise _fail(path, "[workflows] must list at least one workflow")
    return AppManifest(
        name=name,
        root=root,
        dependencies=tuple(deps),
        pins=tuple(pins),
        workflows=tuple(_workflow(path, k, v) for k, v in workflows.items()),
    )
