"""An app whose module raises on import."""

from __future__ import annotations

raise RuntimeError("broken on purpose")
