"""graphrun: a durable workflow engine for LangGraph graphs."""

from __future__ import annotations
