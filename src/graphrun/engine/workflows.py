"""Workflows (``engine.workflows``): the published catalog, and what this engine loaded."""

from __future__ import annotations

from graphrun.apps import LoadedWorkflow
from graphrun.storage import catalog
from graphrun.storage.records import WorkflowRecord

from .core import Core

__all__ = ("Workflows",)


class Workflows:
    """The workflows an engine knows: published by any worker, or loaded here."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def latest(self) -> list[WorkflowRecord]:
        """The newest published version of every workflow in the catalog, by name."""
        return sorted(await catalog.latest(self._core.db), key=lambda w: w.name)

    async def published(self, name: str) -> WorkflowRecord:
        """The newest published version of one workflow.

        Raises:
            WorkflowNotFound: No worker published a workflow of this name.
        """
        return await self._core.published(name)

    def loaded(self, name: str) -> LoadedWorkflow | None:
        """The loaded workflow with this name, if this engine loaded it."""
        return self._core.registry.get(name)

    def loaded_names(self) -> list[str]:
        """The workflows this engine loaded (and its worker executes), by name."""
        return self._core.registry.names()
