"""The per-engine registry of loaded apps and their workflows; never module-level state."""

from __future__ import annotations

from collections.abc import Iterator

from graphrun import errors

from .loader import LoadedApp, LoadedWorkflow

__all__ = ("AppRegistry",)


class AppRegistry:
    """The apps one `Engine` loaded, and their workflows by ``app.workflow`` name."""

    def __init__(self) -> None:
        self._apps: dict[str, LoadedApp] = {}
        self._workflows: dict[str, LoadedWorkflow] = {}

    def add(self, app: LoadedApp) -> None:
        """Register an app.

        Raises:
            ManifestError: Another app with the same name is already registered.
        """
        name = app.manifest.name
        if name in self._apps:
            raise errors.ManifestError(
                f"Two apps are named {name!r}: {self._apps[name].manifest.root} and "
                f"{app.manifest.root}."
            )
        self._apps[name] = app
        for workflow in app.workflows:
            self._workflows[workflow.name] = workflow

    def get(self, workflow: str) -> LoadedWorkflow | None:
        """The workflow with this ``app.workflow`` name, if loaded."""
        return self._workflows.get(workflow)

    def names(self) -> list[str]:
        """Every loaded workflow name, sorted."""
        return sorted(self._workflows)

    def apps(self) -> list[LoadedApp]:
        """Every loaded app."""
        return list(self._apps.values())

    def __iter__(self) -> Iterator[LoadedWorkflow]:
        return iter(self._workflows.values())

    def __len__(self) -> int:
        return len(self._workflows)
