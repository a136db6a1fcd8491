"""A signal storm: 50 runs, 40 signals each from 8 concurrent senders, each consumed once."""

from __future__ import annotations

import asyncio
import sys

import pytest

from graphrun import RunStatus
from tests.conftest import APPS, EngineFactory

if str(APPS / "primitives") not in sys.path:
    sys.path.insert(0, str(APPS / "primitives"))


@pytest.mark.acceptance
@pytest.mark.both_databases
async def test_signal_exactly_once_50_runs_40_signals_8_senders(
    make_engine: EngineFactory,
) -> None:
    runs_n, signals_n, senders_n = 50, 40, 8
    async with make_engine("primitives") as engine:
        started = [
            await engine.start("primitives.mailbox", {"count": signals_n, "items": []})
            for _ in range(runs_n)
        ]

        async def sender(k: int) -> None:
            mine = [r.id for i, r in enumerate(started) if i % senders_n == k]
            for seq in range(signals_n):
                for run_id in mine:
                    await engine.signal(run_id, "item", seq)

        await asyncio.gather(*(sender(k) for k in range(senders_n)))
        finished = [await engine.wait(r.id, timeout=120) for r in started]
        delivered = {r.id: r.output["items"] for r in finished}
        mailboxes = {r.id: await engine.runs.signals(r.id) for r in started}
    consumed = [s for box in mailboxes.values() for s in box if s.consumed_at is not None]
    lost = sum(1 for box in mailboxes.values() for s in box if s.consumed_at is None)
    in_order = sum(1 for items in delivered.values() if items == list(range(signals_n)))
    print(
        f"\nR5 signals: sent={runs_n * signals_n} consumed={len(consumed)} lost={lost} "
        f"runs in order={in_order}/{runs_n}"
    )
    assert [r.status for r in finished] == [RunStatus.COMPLETED] * runs_n
    assert len(consumed) == runs_n * signals_n
    assert lost == 0
    # each signal was consumed by exactly one wait, each wait consumed exactly one signal
    assert all(sorted(items) == list(range(signals_n)) for items in delivered.values())
    assert in_order == runs_n
