"""The dependency rule (docs/DESIGN.md section 4), checked on the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "graphrun"
#: What each layer may import from graphrun's own packages.
ALLOWED = {
    "storage": {"storage"},
    "apps": {"apps"},
    "engine": {"engine", "apps", "storage"},
    "api": {"api", "engine", "apps", "storage"},
    "cli": {"cli", "api", "engine", "apps", "storage"},
}
SHARED = {
    "errors",
    "types",
    "config",
    "validation",
    "ids",
    "authoring",
    "waits",
    "backoff",
    "state_json",
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer: str) -> None:
    for path in (SRC / layer).rglob("*.py"):
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != "graphrun" or len(parts) < 2:
                continue
            assert parts[1] in ALLOWED[layer] | SHARED, f"{path.relative_to(SRC)} imports {name}"


def test_only_storage_touches_sqlalchemy() -> None:
    for path in SRC.rglob("*.py"):
        if "storage" in path.relative_to(SRC).parts:
            continue
        bad = {n for n in imports(path) if n.split(".")[0] in {"sqlalchemy", "alembic"}}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"


def _third_party_private(name: str) -> bool:
    parts = name.split(".")
    return parts[0] not in {"graphrun", "__future__"} and any(p.startswith("_") for p in parts)


def test_no_private_modules_of_other_packages_are_imported() -> None:
    """LangGraph's ``_internal`` and the like change without notice: only public APIs."""
    for path in SRC.rglob("*.py"):
        bad = {n for n in imports(path) if _third_party_private(n)}
        assert not bad, f"{path.relative_to(SRC)} imports {bad}"
    assert _third_party_private("langgraph._internal._serde")
    assert not _third_party_private("langgraph.checkpoint.base")


#: Where asking which database this is belongs: the two backends, and the migrations (one
#: history for both dialects, branching inside, docs/STYLE.md).
MAY_ASK_THE_DIALECT = (SRC / "storage" / "backends", SRC / "storage" / "migrations")


def _names_the_dialect(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == "dialect" or (
            node.attr == "name"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "dialect"
        )
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_backend_name"
    )


def dialect_checks(source: str) -> list[int]:
    """Lines of ``source`` that compare a dialect's name."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare)
        and any(_names_the_dialect(side) for side in (node.left, *node.comparators))
    ]


def test_no_dialect_checks_outside_the_storage_backends() -> None:
    """Every SQLite/PostgreSQL difference is a method of the backend (`storage/database.py`)."""
    found = [
        f"{path.relative_to(SRC)}:{line}"
        for path in SRC.rglob("*.py")
        if not any(folder in path.parents for folder in MAY_ASK_THE_DIALECT)
        for line in dialect_checks(path.read_text())
    ]
    assert found == []


def test_the_dialect_check_finder_finds_each_form() -> None:
    source = (
        'a = db.dialect == "postgresql"\n'
        'b = "sqlite" != conn.dialect.name\n'
        'c = url.get_backend_name() in ("sqlite",)\n'
        "d = db.dialects == 1\n"
    )
    assert dialect_checks(source) == [1, 2, 3]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every graphrun module and the graphrun modules it imports, anywhere in its body.

    Imports under ``TYPE_CHECKING`` and inside functions count: a cycle there is still two
    modules that cannot be understood apart. A parent package is not an edge (Python
    initialises it first in any case).
    """
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module or ""]) if node.level else node.module or ""
                module = module.rstrip(".")
                subs = {f"{module}.{a.name}" for a in node.names} & paths.keys()
                found |= subs or {module}
        graph[name] = {
            m for m in found if m in paths and m != name and not name.startswith(m + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while (top := stack.pop()) != node:
                group.append(top)
            group.append(node)
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


#: Cycles allowed to remain: none. A new cycle fails at once.
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycles_among_graphrun_modules() -> None:
    assert cycles(import_graph()) == KNOWN_CYCLES


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert "graphrun.storage.database" in import_graph()["graphrun.storage.backends.sqlite"]


ROOT = SRC.parents[1]


def test_every_document_the_code_cites_is_in_the_repository() -> None:
    cited: set[str] = set()
    for path in [*SRC.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), ROOT / "README.md"]:
        cited |= set(re.findall(r"\b((?:[\w-]+/)*[\w-]+\.md)\b", path.read_text()))
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert missing == []
    assert "docs/DESIGN.md" in cited
