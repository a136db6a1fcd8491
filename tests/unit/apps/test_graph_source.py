"""What a manifest may name as a graph, and the compile options it may set."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from graphrun import errors
from graphrun.apps import load_app, read_manifest
from graphrun.apps.graph_source import CompileOptions, GraphKind, graph_source
from tests.conftest import APPS

SHAPES = {
    "builder": GraphKind.BUILDER,
    "compiled": GraphKind.COMPILED,
    "functional": GraphKind.ENTRYPOINT,
    "factory": GraphKind.FACTORY,
    "async_factory": GraphKind.FACTORY,
    "agent": GraphKind.COMPILED,
}


def test_every_shape_loads_and_is_recognised() -> None:
    loaded = {wf.name.split(".")[1]: wf for wf in load_app(APPS / "fidelity").workflows}
    for name, kind in SHAPES.items():
        assert loaded[name].graph.kind is kind, name
    assert loaded["manifest_breakpoint"].graph.template.interrupt_after_nodes == ["first"]
    assert loaded["compiled_breakpoint"].graph.template.name == "stops"


def test_a_checkpointer_the_module_set_is_replaced_and_that_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.apps.fidelity.fidelity.shapes import compiled_with_saver

    source = graph_source(compiled_with_saver, CompileOptions(), app="fidelity", where="m:g")
    ours = InMemorySaver()
    with caplog.at_level(logging.INFO, logger="graphrun.apps"):
        bound = source.bind(ours, None)
    assert bound.checkpointer is ours
    assert compiled_with_saver.checkpointer is not ours  # the module's own graph is untouched
    assert [r.action for r in caplog.records] == ["checkpointer_replaced"]  # type: ignore[attr-defined]


def _app(tmp_path: Path, entry: str, code: str) -> Path:
    (tmp_path / "shapes_app").mkdir()
    (tmp_path / "shapes_app" / "__init__.py").write_text("")
    (tmp_path / "shapes_app" / "flows.py").write_text(
        "from langgraph.graph import START, StateGraph\nfrom typing_extensions import TypedDict\n"
        "class S(TypedDict):\n    x: int\n"
        "builder = StateGraph(S)\nbuilder.add_node('n', lambda s: s)\nbuilder.add_edge(START, 'n')\n"
        "compiled = builder.compile()\n" + code
    )
    (tmp_path / "graphrun.toml").write_text(f'[app]\nname = "shapes_app"\n[workflows]\n{entry}\n')
    return tmp_path


@pytest.mark.parametrize(
    ("entry", "code", "message"),
    [
        (
            'w = { graph = "shapes_app.flows:builder", interrupt_before = ["nope"] }',
            "",
            "does not compile",
        ),
        (
            'w = { graph = "shapes_app.flows:compiled", interrupt_after = ["n"] }',
            "",
            "already compiled",
        ),
        (
            'w = "shapes_app.flows:broken"',
            "def broken():\n    raise RuntimeError('no')\n",
            "factory failed",
        ),
        ('w = "shapes_app.flows:wrong"', "def wrong():\n    return 42\n", "returned a int"),
        ('w = "shapes_app.flows:NUMBER"', "NUMBER = 42\n", "is a int"),
    ],
)
def test_what_cannot_be_a_graph_fails_the_load_loudly(
    tmp_path: Path, entry: str, code: str, message: str
) -> None:
    from tests.conftest import forget_app

    forget_app("shapes_app")
    try:
        with pytest.raises(errors.AppLoadError, match=message):
            load_app(_app(tmp_path, entry, code))
    finally:
        forget_app("shapes_app")


@pytest.mark.parametrize(
    "table",
    [
        'w = { graph = "a.b:c", interrupt_before = "first" }',
        'w = { graph = "a.b:c", interrupt_after = [1] }',
        'w = { graph = "a.b:c", name = "" }',
    ],
)
def test_bad_compile_options_are_refused_by_the_manifest(tmp_path: Path, table: str) -> None:
    (tmp_path / "graphrun.toml").write_text(f'[app]\nname = "x"\n[workflows]\n{table}\n')
    with pytest.raises(errors.ManifestError):
        read_manifest(tmp_path)


def test_a_node_function_is_not_taken_for_a_factory(tmp_path: Path) -> None:
    from tests.conftest import forget_app

    forget_app("shapes_app")
    code = "CALLED = []\ndef node(state):\n    CALLED.append(1)\n    return state\n"
    try:
        with pytest.raises(errors.AppLoadError, match=r"taking \(state\)"):
            load_app(_app(tmp_path, 'w = "shapes_app.flows:node"', code))
        import sys

        assert sys.modules["shapes_app.flows"].CALLED == []  # refused before it was called
    finally:
        forget_app("shapes_app")


def test_only_the_apps_own_packages_are_its_modules(tmp_path: Path) -> None:
    from tests.conftest import forget_app

    forget_app("shapes_app", "vendored")
    root = _app(tmp_path, 'w = "shapes_app.flows:builder"', "")
    venv = root / ".venv" / "lib" / "vendored"
    venv.mkdir(parents=True)
    (venv / "__init__.py").write_text("")
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("vendored", venv / "__init__.py")
    assert spec is not None
    assert spec.loader is not None
    sys.modules["vendored"] = importlib.util.module_from_spec(spec)
    try:
        assert load_app(root).modules == ("shapes_app", "shapes_app.flows")
    finally:
        forget_app("shapes_app", "vendored")
        sys.modules.pop("vendored", None)
