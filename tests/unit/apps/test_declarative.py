"""Declarative workflow files: every problem reported at once, each with its line."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphrun import errors
from graphrun.apps import load_app
from graphrun.apps.expressions import ExpressionError, compile_expression
from tests.conftest import forget_app

BAD = """\
input:
  type: object
  properties: {amount: {type: number}}
signals:
  paid: {type: nonsense}
start: check
nodes:
  check:
    kind: python
    function: flows_bad.steps:missing
  ask:
    kind: input
    prompt: "Pay {amont}?"
    output: answer
  lonely:
    kind: python
    function: flows_bad.steps:total
  wait:
    kind: signal
    signal: shipped
    output: parcel
  nap:
    kind: teleport
  check:
    kind: sleep
    seconds: 1
edges:
  - {from: check, to: ask}
  - {from: ask, to: nowhere}
  - from: ask
    cases:
      - {when: "amount > 10 and __import__('os')", to: wait}
      - {when: "amout > 10", to: wait}
  - {from: ghost, to: wait}
  - {from: wait, to: END, colour: red}
"""

# (line, what the message says): one entry per problem planted above
EXPECTED = [
    (5, "not a valid JSON Schema"),
    (10, "function 'flows_bad.steps:missing' cannot be used"),
    (13, "prompt names unknown state key 'amont'"),
    (15, "node 'lonely' cannot be reached from start"),
    (20, "signal 'shipped' is not declared"),
    (22, "unknown node kind 'teleport'"),
    (24, "duplicate key 'check' (first on line 8)"),
    (29, "edge to unknown node 'nowhere'"),
    (32, "only these functions may be called"),
    (33, "reads unknown state keys ['amout']"),
    (34, "edge from unknown node 'ghost'"),
    (35, "colour: unknown key"),
]


@pytest.fixture(autouse=True)
def forget_the_test_package() -> Iterator[None]:
    """Each test writes its own flows_bad package: drop the last one's modules."""
    yield
    forget_app("flows_bad")


def make_app(tmp_path: Path, yaml_text: str, steps: str = "") -> Path:
    (tmp_path / "graphrun.toml").write_text(
        '[app]\nname = "flows_bad"\n[workflows]\nbad = "bad.yaml"\n'
    )
    (tmp_path / "bad.yaml").write_text(yaml_text)
    package = tmp_path / "flows_bad"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text(steps or "def total(state):\n    return {}\n")
    return tmp_path


def test_every_problem_of_a_bad_file_is_reported_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(errors.DefinitionError) as info:
        load_app(make_app(tmp_path, BAD))
    found = [(p["line"], p["message"]) for p in info.value.problems]
    assert {p["file"] for p in info.value.problems} == {"bad.yaml"}
    for line, text in EXPECTED:
        assert any(n == line and text in m for n, m in found), f"line {line}: {text!r} in {found}"
    assert len(found) == len(EXPECTED), found
    assert "bad.yaml:22: " in info.value.message  # the message lists file:line for people


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("start: a\nnodes:\n  a: {kind: python, function: [1]\n", 4, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("", 1, "empty"),
        ("nodes: {}\n", 1, "start: Field required"),
        (
            "start: a\nnodes:\n  a:\n    kind: python\n    function: not a target\n",
            5,
            "should match pattern",
        ),
        ("start: a\nnodes:\n  a: {kind: sleep}\n", 3, "seconds: Field required"),
        (
            "start: a\nnodes:\n  a: {kind: sleep, seconds: 1}\nedges:\n  - {from: a}\n",
            5,
            "an edge needs to, cases, or route",
        ),
        (
            "start: a\nnodes:\n  a: {kind: sleep, seconds: 1}\nedges:\n"
            "  - {from: a, route: 'flows_bad.steps:total'}\n",
            5,
            "route needs to",
        ),
        ("input: {type: string}\nstart: a\nnodes:\n  a: {kind: sleep, seconds: 1}\n", 1, "object"),
        ("start: a\nnodes:\n  Bad-Name: {kind: sleep, seconds: 1}\n", 3, "must match"),
        ("start: a\nnodes:\n  a: {kind: sleep, seconds: 'len('}\n", 3, "not a valid expression"),
        ("start: a\nnodes:\n  a: !!python/object/apply:os.system [id]\n", 3, "is not allowed"),
        ("x: " + "[" * 2000 + "]" * 2000 + "\n", 1, "nested too deeply"),
        ("x: " + "9" * 5000 + "\nstart: a\n", 1, "cannot be read"),
        (
            "start: a\nnodes:\n  a: {kind: sleep, seconds: '" + "-" * 990 + "1'}\n",
            3,
            "nested too deeply",
        ),
        ("start: a\nnodes:\n  a: {kind: python, function: 'this:s'}\n", 3, "standard library"),
        (
            "start: a\nnodes:\n  a: {kind: workflow, workflow: nodots, output: r}\n",
            3,
            "should match pattern",
        ),
        (
            "start: a\nnodes:\n  a: {kind: workflow, workflow: x.y, input: {n: 'm + 1'}, output: r}\n",
            3,
            "reads unknown state keys ['m']",
        ),
    ],
)
def test_each_kind_of_problem_names_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    with pytest.raises(errors.DefinitionError) as info:
        load_app(make_app(tmp_path, text))
    assert any(p["line"] == line and message in p["message"] for p in info.value.problems), (
        info.value.problems
    )


def test_a_good_file_loads_with_its_schema_and_signals(tmp_path: Path) -> None:
    good = textwrap.dedent(
        """\
        input: {type: object, properties: {n: {type: integer}}, required: [n]}
        signals: {go: {}}
        start: first
        nodes:
          first: {kind: python, function: "flows_bad.steps:total"}
          second: {kind: signal, signal: go, output: got}
        edges:
          - {from: first, route: "flows_bad.steps:total", to: [second, END]}
        """
    )
    (workflow,) = load_app(make_app(tmp_path, good)).workflows
    assert workflow.kind == "yaml"
    assert workflow.input_schema["required"] == ["n"]
    assert workflow.signals == {"go": {}}
    assert set(workflow.graph.builder.nodes) == {"first", "second"}


@pytest.mark.parametrize(
    ("source", "state", "value"),
    [
        ("approval.ok and total < 1000", {"approval": {"ok": True}, "total": 5}, True),
        ("approval.ok", {}, None),
        ("status in ['new', 'open']", {"status": "open"}, True),
        ("len(items) > 2 or not items", {"items": []}, True),
        ("items[0] == 'a'", {"items": ["a"]}, True),
        ("items[5]", {"items": ["a"]}, None),
        ("x if flag == true else null", {"flag": True, "x": 3}, 3),
        ("(a + b) * 2 - c % 3", {"a": 1, "b": 2, "c": 4}, 5),
        ("1 < n <= 3", {"n": 3}, True),
        ("max(a, b)", {"a": 1, "b": 2}, 2),
    ],
)
def test_expressions_evaluate_on_state(
    source: str, state: dict[str, object], value: object
) -> None:
    assert compile_expression(source).evaluate(state) == value


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('id')",
        "x.__class__",
        "(lambda: 1)()",
        "[i for i in items]",
        "open('/etc/passwd')",
        "2 ** 100000",
        "items[1:2]",
        "f'{x}'",
        "x := 1",
        "",
    ],
)
def test_expressions_refuse_what_is_not_allowed(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)


def test_an_expression_failing_on_state_names_itself() -> None:
    with pytest.raises(ExpressionError, match="'total < 3' failed: TypeError"):
        compile_expression("total < 3").evaluate({"total": None})


@pytest.mark.parametrize(
    ("source", "state"),
    [
        ("s * n", {"s": "x", "n": 10**9}),
        ("items * n", {"items": [1], "n": 10**7}),
        ("'%0999999999d' % 1", {}),
        ("n * n * n", {"n": 2**200}),
    ],
)
def test_expressions_cannot_exhaust_memory(source: str, state: dict[str, object]) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source).evaluate(state)


def test_a_module_outside_the_app_is_refused_before_it_runs(tmp_path: Path) -> None:
    flow = "start: a\nnodes:\n  a: {kind: python, function: 'antigravity_x.mod:f'}\n"
    outside = tmp_path / "elsewhere"
    (outside / "antigravity_x").mkdir(parents=True)
    (outside / "antigravity_x" / "__init__.py").write_text("raise SystemExit('ran')\n")
    (outside / "antigravity_x" / "mod.py").write_text("def f(state):\n    return {}\n")
    app = tmp_path / "app"
    app.mkdir()
    sys.path.insert(0, str(outside))
    try:
        with pytest.raises(errors.DefinitionError, match="outside the app folder"):
            load_app(make_app(app, flow))
    finally:
        sys.path.remove(str(outside))
    assert "antigravity_x" not in sys.modules
