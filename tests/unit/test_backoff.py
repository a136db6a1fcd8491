"""The one backoff: doubling to a ceiling, jittered, reset by a success."""

from __future__ import annotations

from graphrun.backoff import Backoff


def test_backoff_doubles_to_its_ceiling_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for delay, ceiling in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    assert len({Backoff(1.0, 8.0).next_delay() for _ in range(20)}) > 1  # jittered
