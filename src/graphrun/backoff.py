"""Backoff with jitter: how long a background loop waits after a failure before it tries again.

Every loop that retries (claims, heartbeats, due times, the listener, app workers, a run's
final write) uses this one helper. The delay doubles from ``first_s`` to at most ``max_s``,
and each is drawn at random between half of it and all of it ("equal jitter"), so many
workers that failed together (a database restart) do not all come back in the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ("Backoff",)


@dataclass
class Backoff:
    """Delays for one retrying loop; `reset` after a success."""

    #: The first delay, in seconds (before jitter).
    first_s: float
    #: The longest delay, in seconds.
    max_s: float
    _failures: int = field(default=0, init=False)
    _random: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def next_delay(self) -> float:
        """The delay before the next attempt, counting one more failure."""
        ceiling = min(self.max_s, self.first_s * float(2 ** min(self._failures, 32)))
        self._failures += 1
        jitter: float = self._random.random()
        return ceiling / 2 + jitter * ceiling / 2

    def reset(self) -> None:
        """The loop succeeded: the next failure starts from ``first_s`` again."""
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failures since the last `reset`."""
        return self._failures
