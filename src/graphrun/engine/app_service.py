"""Apps (``engine.apps``): installing an app's dependencies, and every app's state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphrun.apps import LoadedApp
from graphrun.storage import apps as apps_store

from .app_host import AppHost, AppOverview, InstallResult
from .core import Core

__all__ = ("Apps",)


class Apps:
    """The apps of an engine's database, and the ones this engine loaded."""

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def host(self) -> AppHost:
        """The app host: what runs where, and the worker processes (tests, diagnostics)."""
        return self._core.apps

    def loaded(self) -> list[LoadedApp]:
        """The apps this engine imported, by name."""
        return list(self._core.registry.apps())

    def failures(self) -> dict[str, dict[str, Any]]:
        """Apps this engine failed to load: name (or folder) to ``{type, message, traceback}``."""
        return dict(self._core.apps.failures)

    def isolated(self) -> list[str]:
        """Apps with dependencies, run by worker processes on their own environments."""
        return sorted(self._core.apps.isolated)

    async def install(self, path: str | Path) -> InstallResult:
        """Validate an app's dependencies and build the environment its worker runs on.

        Nothing is ever installed at run time: this is the one way an app's packages get
        installed, by an operator (``graphrun apps install``, or admin scope over HTTP).
        The lock (each package's version and sha256) is recorded in the database; a second
        machine installing the same app version gets exactly those files.

        Raises:
            RequirementRejected: A dependency spec breaks the rules (no subprocess started).
            InstallFailed: Building the environment failed; the previous one is untouched.
        """
        return await self._core.apps.install(self._core.db, Path(path))

    async def overview(self) -> list[AppOverview]:
        """Every app the database knows: its status, versions, and unfinished runs per version."""
        statuses = {s.name: s for s in await apps_store.statuses(self._core.db)}
        stored = await apps_store.versions(self._core.db)
        unfinished = await apps_store.unfinished(self._core.db)
        names = sorted({*statuses, *(v.app for v in stored)})
        overview = []
        for name in names:
            status = statuses.get(name)
            versions = []
            for v in (v for v in stored if v.app == name):
                runs_by_workflow = {
                    u.workflow: u.total
                    for u in unfinished
                    if u.app == name and u.app_version == v.version
                }
                versions.append(
                    {
                        "version": v.version,
                        "created_at": v.created_at.isoformat(),
                        "dependencies": v.dependencies,
                        "installed_at": v.installed_at.isoformat() if v.installed_at else None,
                        "lock": v.lock,
                        "unfinished_runs": sum(runs_by_workflow.values()),
                        "unfinished_by_workflow": runs_by_workflow,
                        "current": status is not None and status.version == v.version,
                    }
                )
            overview.append(
                AppOverview(
                    name=name,
                    status=status.status if status else "unknown",
                    version=status.version if status else None,
                    error=status.error if status else None,
                    updated_at=status.updated_at if status else None,
                    versions=versions,
                )
            )
        return overview
