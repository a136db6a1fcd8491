"""What checking a start's input costs (issue 16), beside LangGraph running the graph.

graphrun checks every start by LangGraph's own input step (reducers, the first nodes'
schemas) before storing it. This times that check per workflow of the fidelity app, and
beside it raw LangGraph's ``ainvoke`` of the same graph with nothing durable (the floor a
start adds to). Interleaved rounds, medians.

    .venv/bin/python bench/bench_input_check.py [--rounds 7] [--per-round 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from graphrun.apps import load_app  # noqa: E402
from graphrun.apps.input_check import check_graph_input  # noqa: E402

CASES: dict[str, Any] = {
    "typed_dict": {"x": 1, "seen": ["a"]},
    "pydantic_state": {"x": 1.5},
    "chat": {"messages": [{"role": "user", "content": "hi"}, ("ai", "yo")]},
    "agent": {"messages": [("user", "weather?")]},
}


async def _median_us(work: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await work()
    return (time.perf_counter() - start) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=500)
    args = parser.parse_args()
    loaded = {wf.name.split(".")[1]: wf for wf in load_app(ROOT / "tests/apps/fidelity").workflows}
    rows = []
    for name, value in CASES.items():
        source = loaded[name].graph
        raw = source.template

        async def check(source: Any = source, value: Any = value) -> None:
            await check_graph_input(source, value)

        async def invoke(raw: Any = raw, value: Any = value) -> None:
            await raw.ainvoke(value)

        checks, invokes = [], []
        for _ in range(args.rounds):  # interleaved: both see the same noise
            checks.append(await _median_us(check, args.per_round))
            invokes.append(await _median_us(invoke, max(args.per_round // 10, 5)))
        rows.append((name, statistics.median(checks), statistics.median(invokes)))
    print(f"{'workflow':<16}{'input check µs':>16}{'LangGraph ainvoke µs':>22}{'ratio':>8}")
    for name, check_us, invoke_us in rows:
        print(f"{name:<16}{check_us:>16.1f}{invoke_us:>22.1f}{check_us / invoke_us:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
