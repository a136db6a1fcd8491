from __future__ import annotations

import uuid

from graphrun.ids import RunIdFactory


def test_run_ids_are_uuid7_and_strictly_increasing() -> None:
    factory = RunIdFactory()
    ids = [factory.new() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
