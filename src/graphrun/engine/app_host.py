"""The apps one engine hosts: loaded here, run in their own environment, or kept for old runs.

- An app without dependencies is imported into the engine process (`load_app`).
- An app with dependencies is never imported here: its workflows run in a worker process
  started with the Python of its environment (built by ``graphrun apps install``), which
  this host supervises. Inside that environment the same app is imported normally.
- An app that fails to load is recorded as failed, with its traceback; the others serve.
- Every loaded version's files are stored with it. When an app folder changes, the runs
  started on an older version keep it: the host unpacks that version's files and
  supervises a worker for it while it has runs to execute. A run whose version cannot be
  served (its files were never stored) fails to resume with `DefinitionChanged`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from graphrun import errors
from graphrun.apps import AppManifest, AppRegistry, load_app, read_manifest
from graphrun.apps.environments import (
    Spawn,
    build_environment,
    environment_path,
    lock_pins,
    python_of,
)
from graphrun.apps.loader import code_version
from graphrun.apps.requirements import engine_packages, validate_lock, validate_requirements
from graphrun.apps.snapshots import pack, unpack
from graphrun.config import Settings
from graphrun.storage import Database, lifecycle
from graphrun.storage import apps as apps_store
from graphrun.storage import runs as runs_store
from graphrun.storage.records import Run, RunError, RunStatus

from .app_workers import AppWorkers, WorkerSpec
from .runtime import Runtime

__all__ = ("AppHost", "AppOverview", "InstallResult", "environment_of", "runs_in_own_environment")

logger = logging.getLogger("graphrun.apps")

#: How long opening an engine waits for the workers of apps with dependencies to serve.
READY_TIMEOUT_S = 60.0
#: Failed starts of an old version's worker after which its queued runs fail instead.
MAX_VERSION_FAILURES = 5


def environment_of(settings: Settings, manifest: AppManifest) -> Path:
    """The environment folder of an app with dependencies (its pins decide which)."""
    return environment_path(settings.home.resolve(), manifest.name, manifest.pins)


def runs_in_own_environment(settings: Settings, manifest: AppManifest) -> bool:
    """Whether this process runs on the app's own environment (so it may import the app)."""
    return Path(sys.prefix).resolve() == environment_of(settings, manifest).resolve()


@dataclass(frozen=True, kw_only=True)
class InstallResult:
    """What ``graphrun apps install`` did."""

    app: str
    version: str
    environment: Path
    python: Path
    lock: list[dict[str, Any]]
    #: True when an environment with exactly these packages existed already.
    reused: bool


@dataclass(frozen=True, kw_only=True)
class AppOverview:
    """An app as ``graphrun apps list`` and ``GET /apps`` show it."""

    name: str
    #: ``ok``, ``failed`` (see ``error``) or ``unknown`` (versions stored, never loaded).
    status: str
    #: The version last loaded.
    version: str | None
    error: dict[str, Any] | None
    updated_at: datetime | None
    #: Newest first: ``version``, ``created_at``, ``dependencies``, ``installed_at``,
    #: ``lock``, ``unfinished_runs``, ``unfinished_by_workflow``, ``current``.
    versions: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "error": self.error,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "versions": self.versions,
        }


def _error_of(exc: BaseException) -> dict[str, Any]:
    message = exc.message if isinstance(exc, errors.GraphrunError) else str(exc)
    return {
        "type": type(exc).__name__,
        "code": getattr(exc, "code", None),
        "message": message,
        "traceback": "".join(traceback.format_exception(exc)),
    }


class AppHost:
    """Loads, records and supervises one engine's apps; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        paths: list[Path],
        registry: AppRegistry,
        runtime: Runtime,
        *,
        strict: bool,
    ) -> None:
        self.settings = settings
        self._runtime = runtime
        self.paths = paths
        self.registry = registry
        self.strict = strict
        #: Apps with dependencies that run in a worker of their own: name to manifest.
        self.isolated: dict[str, AppManifest] = {}
        #: Apps that failed to load: name (or folder) to ``{"type", "message", "traceback"}``.
        self.failures: dict[str, dict[str, Any]] = {}
        self.workers = AppWorkers(settings)
        #: Starts install subprocesses (None: the real one); tests record what would run.
        self.spawn: Spawn | None = None
        self._unservable_logged: set[str] = set()

    async def load(self) -> None:
        """Import the apps this process may import; note the others.

        Raises:
            GraphrunError: With ``strict``, the first app that failed to load.
        """
        for path in self.paths:
            try:
                manifest = await asyncio.to_thread(read_manifest, path)
                if manifest.pins and not runs_in_own_environment(self.settings, manifest):
                    self.isolated[manifest.name] = manifest
                    continue
                self.registry.add(await asyncio.to_thread(load_app, path))
            except Exception as exc:  # anything an app's import raises: the others serve
                if self.strict:
                    raise
                name = getattr(exc, "app", None) or Path(path).name
                self.failures[name] = _error_of(exc)
                logger.error("app %s failed to load; the others serve: %s", name, exc)

    async def record(self, db: Database) -> None:
        """Store each loaded version's files and every app's status."""
        for app in self.registry.apps():
            name = app.manifest.name
            await apps_store.record_version(
                db,
                name,
                app.version,
                list(app.manifest.dependencies),
                functools.partial(pack, app.manifest.root, name),
            )
            await apps_store.record_status(db, name, app.version, "ok", None)
        for name, manifest in self.isolated.items():
            version = await asyncio.to_thread(code_version, manifest.root)
            installed = await self._installed(db, manifest, version)
            status, error = ("ok", None) if installed else ("failed", _not_installed(manifest))
            if error is not None:
                self.failures[name] = error
                logger.error("app %s: %s", name, error["message"])
            await apps_store.record_status(db, name, version, status, error)
        for name, error in self.failures.items():
            if name not in self.isolated:
                await apps_store.record_status(db, name, None, "failed", error)

    async def _installed(self, db: Database, manifest: AppManifest, version: str) -> bool:
        stored = await apps_store.version(db, manifest.name, version)
        env = environment_of(self.settings, manifest)
        return stored is not None and stored.lock is not None and python_of(env).exists()

    async def start(self, db: Database, served: dict[str, str]) -> None:
        """Start the workers of apps with dependencies and wait until they serve.

        Then keep watching for old versions that unfinished runs need (``served``: workflow
        to the version loaded here).
        """
        started = {}
        for name, manifest in self.isolated.items():
            if name in self.failures:
                continue
            env = environment_of(self.settings, manifest)
            await self.workers.ensure(
                WorkerSpec(key=name, python=python_of(env), folder=manifest.root)
            )
            started[name] = await asyncio.to_thread(code_version, manifest.root)
        await self._wait_published(db, started)
        self._runtime.start("app_host", lambda: self._supervise(db, served))

    async def _wait_published(self, db: Database, started: dict[str, str]) -> None:
        """Wait until each started app worker published its workflows (or ended)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = dict(started)
        while waiting and time.monotonic() < deadline:
            for name, version in list(waiting.items()):
                if version in await apps_store.published_app_versions(db, name):
                    del waiting[name]
                elif not self.workers.running(name):
                    del waiting[name]
                    self.failures[name] = {
                        "type": "AppWorkerFailed",
                        "code": "app_worker_failed",
                        "message": f"the worker of app {name!r} ended before serving; see its log",
                        "traceback": "",
                    }
                    await apps_store.record_status(db, name, version, "failed", self.failures[name])
            if waiting:
                await asyncio.sleep(0.05)
        for name in waiting:
            logger.warning("the worker of app %s has not published its workflows yet", name)

    async def close(self, grace_s: float = 10.0) -> None:
        """Stop supervising; end the workers (they release their runs)."""
        try:
            await self._runtime.stop("app_host")
        finally:
            await self.workers.close(grace_s)

    @property
    def interval_s(self) -> float:
        """How often old versions are looked for."""
        return max(0.5, self.settings.poll_interval_s * 5)

    async def _supervise(self, db: Database, served: dict[str, str]) -> None:
        while True:
            try:
                await self._serve_old_versions(db, served)
            except Exception as exc:  # the supervision outlives any one failed look
                logger.warning(
                    "looking for old versions failed (retrying): %s",
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": "app_host_failed"},
                )
            await asyncio.sleep(self.interval_s)

    async def _serve_old_versions(self, db: Database, served: dict[str, str]) -> None:
        current = set(served.values())
        for unfinished in await apps_store.unfinished(db, list(served)):
            if unfinished.definition_version in current:
                continue
            active = unfinished.counts.get("queued", 0) + unfinished.counts.get("running", 0)
            if not active:
                continue
            try:
                spec = await self._old_version_worker(db, unfinished.app, unfinished.app_version)
            except Exception as exc:  # its files are damaged, or no longer its version
                logger.error("version %s cannot be served: %s", unfinished.app_version, exc)
                spec = None
            if spec is None or self.workers.failures(spec.key) >= MAX_VERSION_FAILURES:
                await self._fail_unservable(db, unfinished.workflow, unfinished.definition_version)
                continue
            await self.workers.ensure(spec)

    async def _old_version_worker(
        self, db: Database, app: str | None, app_version: str | None
    ) -> WorkerSpec | None:
        """The worker that serves an old version from its stored files (None: none can)."""
        if app is None or app_version is None:
            return None
        files = await apps_store.version_files(db, app, app_version)
        if files is None:
            return None
        folder = self.settings.home.resolve() / "versions" / app / app_version
        await asyncio.to_thread(unpack, files, folder, app_version)
        if await asyncio.to_thread(code_version, folder) != app_version:
            raise errors.AppLoadError(
                app, None, f"the files stored for {app_version} hash differently"
            )
        python = Path(sys.executable)
        manifest = await asyncio.to_thread(read_manifest, folder)
        if manifest.pins:
            python = python_of(environment_of(self.settings, manifest))
        return WorkerSpec(key=f"{app}@{app_version}", python=python, folder=folder, drain=True)

    async def _fail_unservable(self, db: Database, workflow: str, version: str) -> None:
        """Fail the queued runs of a version nobody can serve, saying why."""
        for run in await runs_store.queued_on_version(db, workflow, version):
            error = errors.DefinitionChanged(run.id, workflow, version, [])
            with contextlib.suppress(errors.Conflict):
                await lifecycle.transition(
                    db,
                    run.id,
                    action="fail",
                    allowed=(RunStatus.QUEUED,),
                    change=runs_store.Change(
                        status=RunStatus.FAILED,
                        error=RunError(
                            code=error.code, type=type(error).__name__, message=error.message
                        ),
                    ),
                    seen_version=run.version,
                )
                logger.error("run %s failed: %s", run.id, error.message)

    async def check_servable(self, db: Database, run: Run, current: str | None) -> None:
        """Raise `DefinitionChanged` unless some worker can execute ``run``'s version.

        Args:
            db: The database.
            run: The run about to be queued again.
            current: The version of the run's workflow this engine loaded, if any.
        """
        if run.definition_version == current:
            return
        if await apps_store.servable(db, run.workflow, run.definition_version):
            return
        available = [current] if current else []
        raise errors.DefinitionChanged(run.id, run.workflow, run.definition_version, available)

    async def install(self, db: Database, path: Path) -> InstallResult:
        """Validate an app's dependencies, build its environment, record the lock.

        Raises:
            AppNotFound, ManifestError: The folder or manifest is wrong.
            RequirementRejected: A spec breaks the rules; no subprocess was started.
            InstallFailed: venv or pip failed; the previous environment is untouched.
        """
        manifest = await asyncio.to_thread(read_manifest, path)
        s = self.settings
        engine = await asyncio.to_thread(engine_packages)
        pins = validate_requirements(
            manifest.dependencies,
            allowed=s.allowed_packages,
            allowed_extras=s.allowed_extras,
            max_packages=s.max_packages,
            engine_packages=engine,
            app=manifest.name,
        )
        version = await asyncio.to_thread(code_version, manifest.root)
        await apps_store.record_version(
            db,
            manifest.name,
            version,
            list(manifest.dependencies),
            lambda: pack(manifest.root, manifest.name),
        )
        stored = await apps_store.version(db, manifest.name, version)
        target = environment_of(s, manifest)
        reused = (target / "graphrun-environment.json").is_file()
        # Another machine installed this version before: install exactly what it recorded.
        install_pins = lock_pins(stored.lock, app=manifest.name) if stored and stored.lock else pins
        env = await build_environment(
            app=manifest.name,
            pins=install_pins,
            target=target,
            index_url=s.index_url,
            timeout_s=s.install_timeout_s,
            spawn=self.spawn,
            engine=engine,
            check_lock=functools.partial(
                validate_lock, allowed=s.allowed_packages, engine_packages=engine, app=manifest.name
            ),
        )
        await apps_store.record_lock(db, manifest.name, version, env.lock, env.log)
        return InstallResult(
            app=manifest.name,
            version=version,
            environment=env.path,
            python=python_of(env.path),
            lock=env.lock,
            reused=reused,
        )


def _not_installed(manifest: AppManifest) -> dict[str, Any]:
    message = (
        f"app {manifest.name!r} has dependencies and no environment for this version on this "
        f"machine; run `graphrun apps install {manifest.root}`"
    )
    return {
        "type": "AppNotInstalled",
        "code": "app_not_installed",
        "message": message,
        "traceback": "",
    }
