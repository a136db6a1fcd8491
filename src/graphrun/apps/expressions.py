"""Small, safe expressions on a run's state, for declarative workflows' conditions.

An expression is Python syntax restricted to what a routing condition needs, checked when
the workflow loads and evaluated by walking its syntax tree (never `eval`)::

    approval.ok and total < 1000
    status in ["new", "open"] or len(items) > 3
    not payment
    0 if total < 500 else 3600

Names are state keys; ``a.b`` and ``a["b"]`` read into mappings and ``a[0]`` into lists; a
missing key reads as None. ``true``, ``false`` and ``null`` are accepted beside ``True``,
``False`` and ``None``. Allowed: literals, lists, comparisons (``== != < <= > >= in not in
is is not``), ``and or not``, ``+ - * / // %``, ``x if condition else y``, and the functions ``len``, ``abs``, ``min``,
``max``, ``str``, ``int``, ``float``, ``bool``.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ("Expression", "ExpressionError", "compile_expression")

MAX_LENGTH = 1000  # characters in one expression
MAX_SIZE = 1_000_000  # items or characters a value computed by an expression may have

_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "abs": abs,
    "min": min,
    "max": max,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


class ExpressionError(ValueError):
    """An expression is not allowed, or failed on the state it was given."""


@dataclass(frozen=True)
class Expression:
    """A checked expression, ready to evaluate on state."""

    source: str
    tree: ast.expr
    #: The state keys it reads.
    names: frozenset[str]

    def evaluate(self, state: Mapping[str, Any]) -> Any:
        """The expression's value on ``state``.

        Raises:
            ExpressionError: An operation failed (comparing a number with None, say).
        """
        try:
            return _evaluate(self.tree, state)
        except ExpressionError:
            raise
        except Exception as exc:
            raise ExpressionError(
                f"expression {self.source!r} failed: {type(exc).__name__}: {exc}"
            ) from exc


def compile_expression(source: str) -> Expression:
    """Parse and check an expression.

    Raises:
        ExpressionError: Not valid syntax, or uses something not allowed (the message says what).
    """
    if not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"an expression is at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval").body
        names: set[str] = set()
        _check(tree, names)
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}") from None
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    return Expression(source=source, tree=tree, names=frozenset(names))


def _check(node: ast.AST, names: set[str]) -> None:  # noqa: C901 - one branch per syntax
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, str | int | float | bool | type(None)):
            raise ExpressionError(f"literal {node.value!r} is not allowed")
        return
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            names.add(node.id)
        return
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed")
        _check(node.value, names)
        return
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Slice):
            raise ExpressionError("slices are not allowed")
        _check(node.value, names)
        _check(node.slice, names)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, names)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.USub | ast.UAdd):
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, names)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, names)
        _check(node.right, names)
        return
    if isinstance(node, ast.Compare):
        _check(node.left, names)
        for comparator in node.comparators:
            _check(comparator, names)
        return
    if isinstance(node, ast.List | ast.Tuple):
        for item in node.elts:
            _check(item, names)
        return
    if isinstance(node, ast.IfExp):
        for part in (node.test, node.body, node.orelse):
            _check(part, names)
        return
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
            allowed = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(f"only these functions may be called: {allowed}")
        for arg in node.args:
            _check(arg, names)
        return
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    """Refuse operations whose result could exhaust memory (``"x" * 10**9``, ``"%0999999d"``)."""
    if isinstance(op, ast.Mod) and isinstance(left, str | bytes):
        raise ExpressionError("string formatting with % is not allowed")
    if isinstance(op, ast.Mult):
        for seq, times in ((left, right), (right, left)):
            sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
            if sized and len(seq) * times > MAX_SIZE:
                raise ExpressionError(f"the result would exceed {MAX_SIZE} items")
    for value in (left, right):
        if isinstance(value, int) and abs(value) > 2**256:
            raise ExpressionError("numbers beyond 2**256 are not allowed")


def _read(container: Any, key: Any) -> Any:
    if isinstance(container, Mapping):
        return container.get(key)
    if isinstance(container, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    if container is None:
        return None
    raise ExpressionError(f"cannot read {key!r} from a {type(container).__name__}")


def _evaluate(node: ast.AST, state: Mapping[str, Any]) -> Any:  # noqa: C901
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return _CONSTANTS[node.id] if node.id in _CONSTANTS else state.get(node.id)
    if isinstance(node, ast.Attribute):
        return _read(_evaluate(node.value, state), node.attr)
    if isinstance(node, ast.Subscript):
        return _read(_evaluate(node.value, state), _evaluate(node.slice, state))
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for value in node.values:
            result = _evaluate(value, state)
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, state)
        if isinstance(node.op, ast.Not):
            return not operand
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, state), _evaluate(node.right, state)
        _check_size(node.op, left, right)
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, state)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, state)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.List | ast.Tuple):
        return [_evaluate(item, state) for item in node.elts]
    if isinstance(node, ast.IfExp):
        chosen = node.body if _evaluate(node.test, state) else node.orelse
        return _evaluate(chosen, state)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg, state) for arg in node.args))
    raise ExpressionError(f"{type(node).__name__} is not allowed in an expression")
