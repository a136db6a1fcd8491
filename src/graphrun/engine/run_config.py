"""A run's own LangGraph config: what a caller may set, and what every execution is given.

A caller passes ``config`` as to ``graph.invoke``: ``configurable`` values (read by nodes
through ``config["configurable"]``), ``recursion_limit`` (LangGraph's own default when
absent), ``tags``, ``metadata``, ``run_name`` and ``max_concurrency``. graphrun owns the
thread and checkpoint keys (a run's thread is the run), so a caller's are refused, as are
keys LangGraph keeps for itself (``__``-prefixed). The config is stored with the run and
given again to every execution: resume, retry, fork, and recovery on another worker.
"""

from __future__ import annotations

from typing import Any

from graphrun import errors, validation
from graphrun.storage import checkpoints
from graphrun.storage.records import Run

__all__ = ("OWNED_KEYS", "check_config", "execution_config")

#: ``configurable`` keys graphrun sets itself: a run's thread and checkpoint position.
OWNED_KEYS = frozenset(
    {"thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map", "checkpoint_during"}
)
#: Top-level config keys a caller may set (LangChain's ``RunnableConfig``, without
#: ``callbacks`` and ``run_id``, which are objects of the calling process).
CALLER_KEYS = frozenset(
    {"configurable", "recursion_limit", "tags", "metadata", "run_name", "max_concurrency"}
)
MAX_RECURSION_LIMIT = 1_000_000


def _problem(pointer: str, message: str) -> dict[str, str]:
    return {"pointer": pointer, "message": message}


def _configurable_problems(configurable: Any) -> list[dict[str, str]]:
    if not isinstance(configurable, dict):
        return [_problem("/configurable", "must be an object")]
    problems = []
    for key in configurable:
        where = validation.pointer(("configurable", key))
        if key in OWNED_KEYS:
            problems.append(
                _problem(where, f"{key!r} is set by graphrun (a run is its own thread)")
            )
        elif key.startswith("__"):
            problems.append(_problem(where, "keys starting with '__' are LangGraph's own"))
    return problems


def _int_problem(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be an integer"
    if not low <= value <= high:
        return f"must be between {low} and {high}"
    return None


def _problems(config: dict[str, Any]) -> list[dict[str, str]]:
    problems = [
        _problem(validation.pointer((key,)), f"unknown config key; allowed: {sorted(CALLER_KEYS)}")
        for key in config
        if key not in CALLER_KEYS
    ]
    if "configurable" in config:
        problems += _configurable_problems(config["configurable"])
    for key, high in (("recursion_limit", MAX_RECURSION_LIMIT), ("max_concurrency", 10_000)):
        if key in config and (why := _int_problem(config[key], 1, high)):
            problems.append(_problem(f"/{key}", why))
    tags = config.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(_problem("/tags", "must be a list of strings"))
    if not isinstance(config.get("metadata", {}), dict):
        problems.append(_problem("/metadata", "must be an object"))
    if not isinstance(config.get("run_name", ""), str):
        problems.append(_problem("/run_name", "must be a string"))
    return problems


def check_config(config: Any) -> dict[str, Any] | None:
    """``config`` checked as a caller's run config; None or ``{}`` for none.

    Raises:
        ValidationFailed: It is not JSON, sets a key graphrun owns, or a key LangGraph does
            not take (each problem with its JSON pointer into the config).
    """
    if config is None:
        return None
    validation.check_json(config, what="config")
    if not isinstance(config, dict):
        raise errors.ValidationFailed("config", [_problem("", "must be an object")])
    if problems := _problems(config):
        raise errors.ValidationFailed("config", problems)
    return config or None


def execution_config(run: Run, execution: checkpoints.Execution | None = None) -> dict[str, Any]:
    """The LangGraph config one execution of ``run`` is given: the caller's, on its thread."""
    config: dict[str, Any] = {k: v for k, v in (run.config or {}).items() if k != "configurable"}
    configurable: dict[str, Any] = dict((run.config or {}).get("configurable", {}))
    configurable["thread_id"] = run.id
    if execution is not None:
        configurable[checkpoints.EXECUTION_KEY] = execution
    config["configurable"] = configurable
    return config
