"""A declared input model, stricter than the graph's own state."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TypedInput(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    count: int = Field(ge=1, le=10)
