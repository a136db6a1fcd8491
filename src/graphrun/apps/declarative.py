"""Declarative workflows: a YAML file compiled into a LangGraph `StateGraph`.

A definition names its nodes, the edges between them and the schemas of what comes in::

    description: Review a document, ask a person, publish it.
    input:                                  # JSON Schema of the run's input (an object)
      type: object
      properties: {doc_id: {type: string}}
      required: [doc_id]
    state:                                  # more state keys; reducer: replace|append|merge
      notes: {reducer: append}
    signals:                                # signals the workflow accepts: name -> JSON Schema
      published: {type: object}
    start: fetch
    nodes:
      fetch:   {kind: python, function: "review.steps:fetch", retry: {max_attempts: 3}, timeout: 10}
      approve: {kind: input, prompt: "Publish {doc_id}?", schema: {type: boolean}, output: approved}
      paid:    {kind: signal, signal: published, timeout: 3600, output: receipt}
      cool:    {kind: sleep, seconds: 30}
    edges:
      - {from: fetch, to: approve}
      - from: approve
        cases:                              # first true condition wins; no `when` = otherwise
          - {when: approved, to: paid}
          - {to: END}
      - {from: paid, route: "review.steps:after_payment", to: [cool, END]}

State keys are the input's properties, the ``state`` keys and every node's ``output``. A
``python`` node is a function of the app (``module:function``, sync or async) taking the
state and returning a dict of updates, as in LangGraph. A node with no outgoing edge ends
the run. Every problem of a file is reported at once, each with its line
(`DefinitionError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import jsonschema
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from graphrun import errors
from graphrun.authoring import run_workflow, sleep, timeout, wait_for_input, wait_for_signal

from .expressions import Expression, ExpressionError, compile_expression
from .manifest import bad_module_name, shadows
from .yaml_source import Path as YamlPath
from .yaml_source import YamlSource, read_yaml

__all__ = (
    "Case",
    "DeclaredWorkflow",
    "Definition",
    "Edge",
    "InputNode",
    "PythonNode",
    "Retry",
    "SignalNode",
    "SleepNode",
    "StateKey",
    "WorkflowNode",
    "compile_definition",
    "read_definition",
)

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
TARGET_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
SIGNAL_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
WORKFLOW_PATTERN = r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"
MAX_FILE_BYTES = 1_000_000
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: Every key a definition may hold, at any level (to tell a missing key from a union's tag).
_FIELDS = frozenset(
    {
        "description",
        "input",
        "state",
        "signals",
        "start",
        "nodes",
        "edges",
        "kind",
        "function",
        "retry",
        "timeout",
        "prompt",
        "schema",
        "output",
        "signal",
        "seconds",
        "when",
        "to",
        "from",
        "cases",
        "route",
        "reducer",
        "max_attempts",
        "initial_interval",
        "backoff_factor",
        "max_interval",
        "workflow",
    }
)

#: What a python node's function is looked up with: ``module:function`` to the callable.
Resolver = Callable[[str], Any]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Retry(_Spec):
    """Retries of a failing ``python`` node (LangGraph's `RetryPolicy`)."""

    max_attempts: int = Field(3, ge=1, le=100)
    initial_interval: float = Field(0.5, ge=0, le=3600)
    backoff_factor: float = Field(2.0, ge=1, le=10)
    max_interval: float = Field(128.0, ge=0, le=86400)


class PythonNode(_Spec):
    """A function of the app."""

    kind: Literal["python"]
    function: str = Field(pattern=TARGET_PATTERN)
    retry: Retry | None = None
    timeout: float | None = Field(None, gt=0, le=86400)


class InputNode(_Spec):
    """A wait for a person's answer (`wait_for_input`), stored in ``output``."""

    kind: Literal["input"]
    prompt: Any = None
    answer_schema: dict[str, Any] | None = Field(None, alias="schema")
    output: str = Field(pattern=NAME_PATTERN)


class SignalNode(_Spec):
    """A wait for a named signal (`wait_for_signal`); its payload (None on timeout) in ``output``."""

    kind: Literal["signal"]
    signal: str = Field(pattern=SIGNAL_PATTERN)
    timeout: float | None = Field(None, gt=0)
    output: str = Field(pattern=NAME_PATTERN)


class SleepNode(_Spec):
    """A durable timer: a number of seconds, or an expression on state giving one."""

    kind: Literal["sleep"]
    seconds: float | str


class WorkflowNode(_Spec):
    """A child run of another workflow (`run_workflow`); its final state lands in ``output``.

    ``input`` maps each of the child's input keys to an expression on this run's state.
    """

    kind: Literal["workflow"]
    workflow: str = Field(pattern=WORKFLOW_PATTERN)
    input: dict[str, str] = Field(default_factory=dict)
    output: str = Field(pattern=NAME_PATTERN)


Node = Annotated[
    PythonNode | InputNode | SignalNode | SleepNode | WorkflowNode, Field(discriminator="kind")
]
_KINDS = "python, input, signal, sleep or workflow"


class Case(_Spec):
    """One branch of a conditional edge: taken when ``when`` is true (always, without it)."""

    when: str | None = None
    to: str


class Edge(_Spec):
    """From a node to the next: fixed (``to``), by conditions (``cases``) or by a function."""

    source: str = Field(alias="from")
    to: str | list[str] | None = None
    cases: list[Case] | None = None
    #: ``module:function`` taking the state and returning the next node's name (one of ``to``).
    route: str | None = Field(None, pattern=TARGET_PATTERN)


class StateKey(_Spec):
    """A state key and how updates to it combine."""

    reducer: Literal["replace", "append", "merge"] = "replace"


class Definition(_Spec):
    """A declarative workflow file, as written."""

    description: str = ""
    input: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    state: dict[str, StateKey | None] = Field(default_factory=dict)
    signals: dict[str, dict[str, Any]] = Field(default_factory=dict)
    start: str
    nodes: dict[str, Node]
    edges: list[Edge] = Field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class DeclaredWorkflow:
    """A checked definition compiled to a LangGraph builder."""

    definition: Definition
    builder: StateGraph[Any, Any, Any, Any]
    input_schema: dict[str, Any]
    signals: dict[str, dict[str, Any]]


_NODE: TypeAdapter[Any] = TypeAdapter(Node)
_EDGE: TypeAdapter[Any] = TypeAdapter(Edge)


class _Problems:
    """Problems of one file, each with its line."""

    def __init__(self, source: YamlSource) -> None:
        self.source = source
        self.found: list[tuple[int, str]] = list(source.problems)

    def add(self, path: YamlPath, message: str) -> None:
        self.found.append((self.source.line_of(path), message))

    def raise_if_any(self) -> None:
        if self.found:
            raise errors.DefinitionError(
                [
                    {"file": self.source.file, "line": line, "message": message}
                    for line, message in sorted(self.found, key=lambda p: p[0])
                ]
            )


def read_definition(file: Path, shown_as: str, resolve: Resolver) -> DeclaredWorkflow:
    """Read, check and compile one declarative workflow file.

    Args:
        file: The YAML file.
        shown_as: How errors name the file (its path within the app).
        resolve: Looks up ``module:function`` in the app; raises `AppLoadError` when missing.

    Raises:
        DefinitionError: Every problem in the file, each with its line.
    """
    data = file.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise errors.DefinitionError(
            [{"file": shown_as, "line": 1, "message": f"larger than {MAX_FILE_BYTES} bytes"}]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.DefinitionError(
            [{"file": shown_as, "line": 1, "message": f"not UTF-8: {exc}"}]
        ) from None
    return compile_definition(read_yaml(text, shown_as), resolve)


def compile_definition(source: YamlSource, resolve: Resolver) -> DeclaredWorkflow:
    """Check a read YAML document and compile it; see `read_definition`."""
    problems = _Problems(source)
    if source.data is None:
        problems.raise_if_any()
    if not isinstance(source.data, dict):
        problems.add((), "a workflow definition must be a mapping of sections")
        problems.raise_if_any()
    definition, broken, dropped = _structure(source.data, problems)
    if definition is None:
        problems.raise_if_any()
    assert definition is not None
    checker = _Checker(definition, problems, resolve, broken, dropped)
    checker.run()  # also when the structure had problems: report them all at once
    problems.raise_if_any()
    return DeclaredWorkflow(
        definition=definition,
        builder=checker.build(),
        input_schema=definition.input,
        signals=dict(definition.signals),
    )


def _structure(
    data: dict[str, Any], problems: _Problems
) -> tuple[Definition | None, set[str], list[Any]]:
    """The definition, or its well-formed part with the names of broken nodes and edges."""
    try:
        return Definition.model_validate(data), set(), []
    except ValidationError as exc:
        for error in exc.errors():
            path = _data_path(data, error["loc"])
            where = ".".join(str(p) for p in path) or "file"
            problems.add(path, f"{where}: {_message(error)}")
    nodes, edges = data.get("nodes"), data.get("edges")
    broken: set[str] = set()
    dropped: list[Any] = []
    part = dict(data)
    if isinstance(nodes, dict):
        broken = {name for name, node in nodes.items() if not _well_formed(_NODE, node)}
        part["nodes"] = {name: node for name, node in nodes.items() if name not in broken}
    if isinstance(edges, list):
        part["edges"] = [edge for edge in edges if _well_formed(_EDGE, edge)]
        dropped = [edge for edge in edges if not _well_formed(_EDGE, edge)]
    try:
        return Definition.model_validate(part), broken, dropped
    except ValidationError:
        return None, broken, dropped


def _loose_links(edges: list[Any]) -> list[tuple[str, set[str]]]:
    """The links of malformed edges, read leniently, so reachability still counts them."""
    links = []
    for edge in edges:
        if not isinstance(edge, dict) or not isinstance(edge.get("from"), str):
            continue
        to = edge.get("to")
        nexts = {to} if isinstance(to, str) else {t for t in to or [] if isinstance(t, str)}
        for case in edge.get("cases") or []:
            if isinstance(case, dict) and isinstance(case.get("to"), str):
                nexts.add(case["to"])
        links.append((edge["from"], nexts))
    return links


def _well_formed(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "union_tag_invalid":
        return f"unknown node kind {error['input'].get('kind')!r}; use {_KINDS}"
    if error["type"] == "union_tag_not_found":
        return f"a node needs a kind: {_KINDS}"
    return str(error["msg"])


def _data_path(data: Any, loc: tuple[Any, ...]) -> YamlPath:
    """The path into the document of a pydantic error location.

    Parts that are not in the document (a union's tag, a type's name) are skipped; a key
    that is missing ends the path, so the error sits on its parent's line.
    """
    path: list[str | int] = []
    for part in loc:
        key = "from" if part == "source" and isinstance(data, dict) and "from" in data else part
        if _holds(data, key):
            data = data[key]
        elif isinstance(data, dict) and key in _FIELDS:
            path.append(key)
            break
        else:
            continue
        path.append(key)
    return tuple(path)


def _holds(data: Any, key: Any) -> bool:
    if isinstance(data, dict):
        return key in data
    return isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data)


class _Checker:
    """The checks a schema cannot express, then the compile."""

    def __init__(
        self,
        definition: Definition,
        problems: _Problems,
        resolve: Resolver,
        broken: set[str],
        raw_edges: list[Any],
    ) -> None:
        self.d = definition
        #: Edges already reported as malformed, as written.
        self.raw_edges = raw_edges
        #: Nodes already reported as malformed: edges may name them without more errors.
        self.broken = broken
        self.problems = problems
        self.resolve = resolve
        self.functions: dict[str, Callable[..., Any]] = {}
        self.expressions: dict[str, Expression] = {}
        self.state_keys = self._state_keys()

    def _state_keys(self) -> dict[str, str]:
        keys = dict.fromkeys(self.d.input.get("properties", {}) or {}, "replace")
        for name, spec in self.d.state.items():
            keys[name] = spec.reducer if spec is not None else "replace"
        for node in self.d.nodes.values():
            if isinstance(node, InputNode | SignalNode | WorkflowNode):
                keys.setdefault(node.output, "replace")
        return keys

    def run(self) -> None:
        self._schemas()
        for name in self.d.state:
            if not re.fullmatch(NAME_PATTERN, name):
                self.problems.add(("state", name), f"state key {name!r} must match {NAME_PATTERN}")
        for name, node in self.d.nodes.items():
            self._node(name, node)
        self._edges()
        self._reachable()

    def _schemas(self) -> None:
        self._schema(("input",), self.d.input)
        if self.d.input.get("type") not in (None, "object"):
            self.problems.add(("input", "type"), "the input must be an object (its keys are state)")
        for name, schema in self.d.signals.items():
            if not re.fullmatch(SIGNAL_PATTERN, name):
                self.problems.add(
                    ("signals", name), f"signal name {name!r} must match {SIGNAL_PATTERN}"
                )
            self._schema(("signals", name), schema)

    def _schema(self, path: YamlPath, schema: Any) -> None:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            self.problems.add(path, f"not a valid JSON Schema: {exc.message}")

    def _function(self, path: YamlPath, target: str) -> None:
        if (why := bad_module_name(target)) is not None:
            self.problems.add(path, f"{target!r}: {why}")
            return
        if shadows(target):
            self.problems.add(
                path, f"{target!r} names a module of the standard library or of graphrun's own"
            )
            return
        try:
            fn = self.resolve(target)
        except errors.AppLoadError as exc:
            self.problems.add(path, f"function {target!r} cannot be used: {exc.message}")
            return
        if not callable(fn):
            self.problems.add(path, f"{target!r} is a {type(fn).__name__}, not a function")
            return
        self.functions[target] = fn

    def _expression(self, path: YamlPath, source: str) -> None:
        try:
            expression = compile_expression(source)
        except ExpressionError as exc:
            self.problems.add(path, f"expression {source!r}: {exc}")
            return
        unknown = sorted(expression.names - set(self.state_keys))
        if unknown:
            self.problems.add(path, f"expression {source!r} reads unknown state keys {unknown}")
            return
        self.expressions[source] = expression

    def _node(self, name: str, node: Any) -> None:
        path: YamlPath = ("nodes", name)
        if not re.fullmatch(NAME_PATTERN, name):
            self.problems.add(path, f"node name {name!r} must match {NAME_PATTERN}")
        if isinstance(node, PythonNode):
            self._function((*path, "function"), node.function)
        elif isinstance(node, InputNode):
            self._input_node(path, node)
        elif isinstance(node, SignalNode):
            if node.signal not in self.d.signals:
                self.problems.add(
                    (*path, "signal"),
                    f"signal {node.signal!r} is not declared under signals: "
                    f"{sorted(self.d.signals) or 'none are'}",
                )
        elif isinstance(node, WorkflowNode):
            for key, source in node.input.items():
                self._expression((*path, "input", key), source)
        elif isinstance(node.seconds, str):
            self._expression((*path, "seconds"), node.seconds)
        elif node.seconds < 0:
            self.problems.add((*path, "seconds"), "seconds must be >= 0")

    def _input_node(self, path: YamlPath, node: InputNode) -> None:
        if node.answer_schema is not None:
            self._schema((*path, "schema"), node.answer_schema)
        if isinstance(node.prompt, str):
            for key in _PLACEHOLDER.findall(node.prompt):
                if key not in self.state_keys:
                    self.problems.add((*path, "prompt"), f"prompt names unknown state key {key!r}")

    def _target(self, path: YamlPath, target: str) -> None:
        if target != "END" and target not in self.d.nodes and target not in self.broken:
            self.problems.add(path, f"edge to unknown node {target!r}")

    def _edges(self) -> None:
        if self.d.start not in self.d.nodes and self.d.start not in self.broken:
            self.problems.add(("start",), f"start names unknown node {self.d.start!r}")
        for i, edge in enumerate(self.d.edges):
            path: YamlPath = ("edges", i)
            if edge.source not in self.d.nodes and edge.source not in self.broken:
                self.problems.add((*path, "from"), f"edge from unknown node {edge.source!r}")
            forms = sum(x is not None for x in (edge.cases, edge.route))
            if forms > 1 or (edge.cases is not None and edge.to is not None):
                self.problems.add(path, "an edge has one of: to, cases, or route with to")
                continue
            if edge.route is not None:
                if not isinstance(edge.to, list) or not edge.to:
                    self.problems.add(path, "route needs to: the list of nodes it may choose")
                self._function((*path, "route"), edge.route)
            elif edge.cases is None and edge.to is None:
                self.problems.add(path, "an edge needs to, cases, or route")
            for j, target in enumerate(self._targets(edge)):
                where = (*path, "to", j) if isinstance(edge.to, list) else (*path, "to")
                self._target(where, target)
            for j, case in enumerate(edge.cases or []):
                self._target((*path, "cases", j, "to"), case.to)
                if case.when is not None:
                    self._expression((*path, "cases", j, "when"), case.when)

    @staticmethod
    def _targets(edge: Edge) -> list[str]:
        if isinstance(edge.to, list):
            return edge.to
        return [edge.to] if edge.to is not None else []

    def _reachable(self) -> None:
        following: dict[str, set[str]] = {name: set() for name in [*self.d.nodes, *self.broken]}
        for source, nexts in [*self.links, *_loose_links(self.raw_edges)]:
            following.setdefault(source, set()).update(nexts)
        seen, todo = set(), [self.d.start]
        while todo:
            name = todo.pop()
            if name in seen or name not in following:
                continue
            seen.add(name)
            todo.extend(following[name])
        if self.d.start not in self.d.nodes:
            return
        for name in self.d.nodes:
            if name not in seen:
                self.problems.add(("nodes", name), f"node {name!r} cannot be reached from start")

    @property
    def links(self) -> list[tuple[str, set[str]]]:
        """Each edge as (from, the nodes it may lead to)."""
        return [
            (edge.source, set(self._targets(edge)) | {c.to for c in edge.cases or []})
            for edge in self.d.edges
        ]

    # -- compile ---------------------------------------------------------------------------

    def build(self) -> StateGraph[Any, Any, Any, Any]:
        reducers: dict[str, Any] = {"append": _append, "merge": _merge}
        fields = {
            key: Annotated[Any, reducers[reducer]] if reducer in reducers else Any
            for key, reducer in self.state_keys.items()
        }
        state = TypedDict("State", fields, total=False)  # type: ignore[misc]
        builder: StateGraph[Any, Any, Any, Any] = StateGraph(state)
        for name, node in self.d.nodes.items():
            if isinstance(node, PythonNode):
                fn = self.functions[node.function]
                if node.timeout is not None:
                    fn = timeout(node.timeout)(fn)
                retry = None
                if node.retry is not None:
                    retry = RetryPolicy(**node.retry.model_dump(), retry_on=_retryable)
                builder.add_node(name, fn, retry_policy=retry)
            else:
                builder.add_node(name, self._waiting_node(node))
        builder.add_edge(START, self.d.start)
        leaving = {edge.source for edge in self.d.edges}
        for edge in self.d.edges:
            self._add_edge(builder, edge)
        for name in self.d.nodes:
            if name not in leaving:
                builder.add_edge(name, END)
        return builder

    def _add_edge(self, builder: StateGraph[Any, Any, Any, Any], edge: Edge) -> None:
        if edge.route is not None:
            route = self.functions[edge.route]
            path_map: dict[Hashable, str] = {t: _node_or_end(t) for t in self._targets(edge)}
            builder.add_conditional_edges(edge.source, route, path_map)
        elif edge.cases is not None:
            cases = [
                (None if c.when is None else self.expressions[c.when], _node_or_end(c.to))
                for c in edge.cases
            ]
            destinations = sorted({target for _, target in cases} | {END})
            builder.add_conditional_edges(edge.source, _CaseRouter(cases), destinations)
        else:
            for target in self._targets(edge):
                builder.add_edge(edge.source, _node_or_end(target))

    def _waiting_node(
        self, node: InputNode | SignalNode | SleepNode | WorkflowNode
    ) -> Callable[..., Any]:
        if isinstance(node, WorkflowNode):
            inputs = {key: self.expressions[source] for key, source in node.input.items()}
            return _ChildStep(node.workflow, inputs, node.output)
        if isinstance(node, InputNode):
            return _InputStep(node.prompt, node.answer_schema, node.output)
        if isinstance(node, SignalNode):
            return _SignalStep(node.signal, self.d.signals[node.signal], node.timeout, node.output)
        seconds = node.seconds
        return _SleepStep(self.expressions[seconds] if isinstance(seconds, str) else seconds)


def _node_or_end(name: str) -> str:
    return END if name == "END" else name


def _retryable(exc: Exception) -> bool:
    """Declarative retries retry every error but graphrun's own waits and cancellations."""
    return not isinstance(exc, errors.SignalTimeout)


def _append(current: Any, update: Any) -> list[Any]:
    """Reducer ``append``: a list that each update extends (a non-list update is one item)."""
    items = list(current) if isinstance(current, list) else []
    return items + (list(update) if isinstance(update, list) else [update])


def _merge(current: Any, update: Any) -> dict[str, Any]:
    """Reducer ``merge``: a mapping that each update's keys overwrite."""
    merged = dict(current) if isinstance(current, Mapping) else {}
    merged.update(update if isinstance(update, Mapping) else {})
    return merged


def _render(prompt: Any, state: Mapping[str, Any]) -> Any:
    if not isinstance(prompt, str):
        return prompt
    return _PLACEHOLDER.sub(lambda m: str(state.get(m.group(1), "")), prompt)


class _CaseRouter:
    """Picks the first case whose condition holds; END when none does."""

    def __init__(self, cases: list[tuple[Expression | None, str]]) -> None:
        self.cases = cases

    def __call__(self, state: Mapping[str, Any]) -> str:
        for condition, target in self.cases:
            if condition is None or condition.evaluate(state):
                return target
        return END


class _InputStep:
    def __init__(self, prompt: Any, schema: dict[str, Any] | None, output: str) -> None:
        self.prompt, self.schema, self.output = prompt, schema, output

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {self.output: wait_for_input(_render(self.prompt, state), self.schema)}


class _SignalStep:
    def __init__(
        self, name: str, schema: dict[str, Any], timeout_s: float | None, output: str
    ) -> None:
        self.name, self.schema, self.timeout_s, self.output = name, schema, timeout_s, output

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        try:
            payload = wait_for_signal(self.name, self.schema or None, timeout=self.timeout_s)
        except errors.SignalTimeout:
            payload = None
        return {self.output: payload}


class _ChildStep:
    def __init__(self, workflow: str, inputs: dict[str, Expression], output: str) -> None:
        self.workflow, self.inputs, self.output = workflow, inputs, output

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        child_input = {key: expr.evaluate(state) for key, expr in self.inputs.items()}
        return {self.output: run_workflow(self.workflow, child_input)}


class _SleepStep:
    def __init__(self, seconds: float | Expression) -> None:
        self.seconds = seconds

    async def __call__(self, state: Mapping[str, Any]) -> dict[str, Any]:
        seconds = self.seconds
        if isinstance(seconds, Expression):
            seconds = seconds.evaluate(state)
        sleep(seconds)
        return {}
