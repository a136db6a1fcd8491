"""The README's "Writing a workflow": the idioms it shows are the example app's, and work."""

from __future__ import annotations

import re

from graphrun import RunStatus
from tests.conftest import EXAMPLES, ROOT, EngineFactory

APP = EXAMPLES / "assistant"


def _readme_blocks() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Writing a workflow")[1].split("\n## ")[0]
    return re.findall(r"```(?:python|toml)\n(.*?)```", section, re.S)


def test_the_readmes_graph_code_and_manifest_are_the_example_apps() -> None:
    flows = (APP / "assistant" / "flows.py").read_text()
    manifest = (APP / "graphrun.toml").read_text()
    blocks = _readme_blocks()
    graph_code = next(b for b in blocks if "class Ticket" in b)
    for chunk in graph_code.strip().split("\n\n\n"):
        assert chunk.strip() in flows, chunk
    shown = next(b for b in blocks if "[workflows]" in b)
    for line in shown.splitlines():
        if line and not line.startswith("#"):
            assert line in manifest, line


async def test_the_readmes_starts_run_as_it_says(make_engine: EngineFactory) -> None:
    async with make_engine(APP) as engine:
        ticket = await engine.start("assistant.tickets", {"title": "outage in Riga"})
        chat = await engine.start(
            "assistant.chat",
            {"messages": [{"role": "user", "content": "hi"}]},
            context={"user": "ada"},
        )
        agent = await engine.start("assistant.agent", {"messages": [("user", "weather in Riga?")]})
        short = await engine.start(
            "assistant.chat",
            {"messages": "hi"},
            context={"user": "ada"},
            config={"configurable": {"model": "small"}, "recursion_limit": 50},
        )
        ticket, chat, agent, short = [
            await engine.wait(r.id, timeout=60) for r in (ticket, chat, agent, short)
        ]
        assert {r.status for r in (ticket, chat, agent, short)} == {RunStatus.COMPLETED}
        assert ticket.output == {"title": "outage in Riga", "priority": 1}
        assert chat.output["messages"][-1]["content"] == "ada, you said: hi"
        assert chat.output["turns"] == 1
        assert agent.output["messages"][-1]["content"] == "The weather: sunny in Riga."
        assert short.output == {**chat.output, "messages": short.output["messages"]}
