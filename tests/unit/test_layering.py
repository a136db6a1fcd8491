"""The dependency rule (DESIGN.md section 4), checked on the source."""

from __future__ import annotations

import ast
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
SHARED = {"errors", "types", "config", "validation", "ids", "authoring", "waits", "backoff"}


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
#: history for both dialects, branching inside, STYLE.md).
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
