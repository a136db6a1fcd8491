"""schemathesis hooks for `test_api_fuzz`: keep long-polls short so the run stays fast.

``GET /runs/{id}?wait=60`` is valid and would hold the connection for a minute whenever the
run is queued behind others; the fuzzer only needs the parameter's handling, not the wait.
"""

from __future__ import annotations

from typing import Any

import schemathesis

MAX_WAIT_S = 0.2


@schemathesis.hook
def map_query(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    if query and isinstance(query.get("wait"), int | float) and query["wait"] > MAX_WAIT_S:
        return {**query, "wait": MAX_WAIT_S}
    return query
