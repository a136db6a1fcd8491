"""Reading a YAML file into plain values while remembering the line of every key and item.

PyYAML's safe loader gives values without positions; a workflow's errors must name their
line. This composes the node tree (safe tags only), builds the values from it, and records
``path -> line`` where a path is the keys and indexes leading to a value. Duplicate keys,
which YAML loaders silently resolve to the last, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ("Path", "YamlSource", "read_yaml")

#: Keys and list indexes from the document root to a value.
Path = tuple[str | int, ...]

MAX_DEPTH = 64  # nesting levels
MAX_NODES = 100_000  # values in one document, aliases counted each time they are used
#: The only tags a value may carry: plain JSON-like data.
_ALLOWED_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
)


@dataclass
class YamlSource:
    """A YAML document's values, with the line of each value (1-based)."""

    file: str
    data: Any = None
    lines: dict[Path, int] = field(default_factory=dict)
    #: Problems found while reading: ``(line, message)``.
    problems: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of ``path``, or of its nearest enclosing value that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


class _Builder:
    def __init__(self, source: YamlSource) -> None:
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES or len(path) > MAX_DEPTH:
            raise _TooBig(node.start_mark.line + 1)
        self.source.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _ALLOWED_TAGS:
            self.source.problems.append(
                (node.start_mark.line + 1, f"tag {node.tag!r} is not allowed: plain data only")
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.source.problems.append((line, "a key must be a plain string"))
                continue
            key = self.constructor.construct_object(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.source.problems.append((line, "merge keys (<<) are not supported"))
                continue
            key = str(key)
            if key in result:
                first = self.source.lines.get((*path, key), line)
                self.source.problems.append(
                    (line, f"duplicate key {key!r} (first on line {first})")
                )
                continue
            self.source.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
            self.source.lines[(*path, key)] = line  # the key's line, not its value's
        return result


class _TooBig(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def read_yaml(text: str, file: str) -> YamlSource:
    """Read one YAML document; problems (syntax, duplicates, size) land in ``problems``."""
    source = YamlSource(file=file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        source.problems.append((1, f"nested too deeply (at most {MAX_DEPTH} levels)"))
        return source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        source.problems.append((line, f"not valid YAML: {exc.problem or exc.context}"))
        return source
    except yaml.YAMLError as exc:
        source.problems.append((1, f"not valid YAML: {exc}"))
        return source
    if node is None:
        source.problems.append((1, "the file is empty"))
        return source
    try:
        source.data = _Builder(source).build(node, ())
    except _TooBig as exc:
        source.problems.append(
            (
                exc.line,
                f"the document is too large or too deep (limits {MAX_NODES} values, {MAX_DEPTH} levels)",
            )
        )
    except yaml.YAMLError as exc:
        line = (
            exc.problem_mark.line + 1
            if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark
            else 1
        )
        source.problems.append((line, f"not valid YAML: {exc}"))
    except (RecursionError, ValueError, OverflowError) as exc:  # e.g. a 5,000-digit number
        source.problems.append((1, f"a value cannot be read: {str(exc)[:200]}"))
    return source
