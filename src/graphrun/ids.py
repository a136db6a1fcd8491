"""Run ids: UUIDv7 (RFC 9562), so ids sort by creation time and index well."""

from __future__ import annotations

import os
import time
import uuid

__all__ = ("RunIdFactory",)


class RunIdFactory:
    """Makes UUIDv7 ids that increase strictly within this factory.

    RFC 9562 method 1: a 48-bit millisecond timestamp, then a 12-bit counter (``rand_a``)
    that orders ids made in the same millisecond, then 62 random bits. Owned by an `Engine`;
    nothing is shared between factories.
    """

    def __init__(self) -> None:
        self._last_ms = 0
        self._counter = 0

    def new(self) -> str:
        """A new id, greater than every id this factory made before."""
        now_ms = time.time_ns() // 1_000_000
        if now_ms > self._last_ms:
            self._last_ms, self._counter = now_ms, int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            self._counter += 1
            if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                self._last_ms, self._counter = self._last_ms + 1, 0
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (self._last_ms << 80) | (0x7 << 76) | (self._counter << 64) | (0b10 << 62) | rand_b
        return str(uuid.UUID(int=value))
