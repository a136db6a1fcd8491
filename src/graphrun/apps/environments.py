"""Per-app Python environments: built by ``graphrun apps install``, never at run time.

An app with dependencies runs in a worker process started with its own environment's
Python, so two apps can pin different versions of one package and the engine process
imports neither. The environment holds only the app's packages; a ``.pth`` file makes
graphrun (and what it runs on) importable after them, which is why an app may not pin a
package graphrun runs on to another version (`validate_requirements`).

Building one: specs are validated first (nothing runs for a refused spec); then
``python -m venv --without-pip`` in a staging folder and pip from graphrun's own
environment pointed at it with ``--python``: an argument list (no shell), ``--only-binary
:all:`` (wheels only: no package code runs at install), ``--require-hashes`` when hashes
are given (from a requirements file graphrun writes from the validated pins), ``--`` before
the specs otherwise, the configured index only, a scrubbed environment (no ``PIP_*``,
``UV_*``, ``PYTHON*``, no pip configuration files) and a timeout. The folder is renamed into
place only when pip succeeded, so a failed install leaves the previous environment as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import site
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrun import errors

from .requirements import Pin

__all__ = (
    "DEFAULT_INDEX_URL",
    "Environment",
    "Spawn",
    "build_environment",
    "environment_path",
    "lock_pins",
    "python_of",
)

DEFAULT_INDEX_URL = "https://pypi.org/simple"
_MARKER = "graphrun-environment.json"
_LOCK_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,98}[a-z0-9])?\Z")
_LOCK_VERSION = re.compile(r"^[A-Za-z0-9.+!_-]{1,64}\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_PTH = "graphrun_engine.pth"

#: Starts a subprocess: ``(argv, env, cwd) -> (exit code, output)``; tests record calls.
Spawn = Callable[[Sequence[str], dict[str, str], Path, float], Awaitable[tuple[int, str]]]


@dataclass(frozen=True, kw_only=True)
class Environment:
    """A built environment and the exact packages in it."""

    path: Path
    #: ``[{"name", "version", "sha256"}]``, sorted by name.
    lock: list[dict[str, Any]]
    log: str


def python_of(env: Path) -> Path:
    """The Python executable of an environment folder."""
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def environment_path(home: Path, app: str, pins: Sequence[Pin]) -> Path:
    """Where the environment for these pins lives: the same pins share one folder."""
    key = json.dumps(
        [sys.version_info[:2], sorted(p.line for p in pins)], separators=(",", ":")
    ).encode()
    return home / "envs" / app / hashlib.sha256(key).hexdigest()[:24]


def lock_pins(lock: Sequence[dict[str, Any]], *, app: str = "app") -> list[Pin]:
    """A lock (resolved, or recorded in the database) as pins with their hashes.

    Raises:
        InstallFailed: An entry is not a package, a version and a sha256.
    """
    pins = []
    for item in lock:
        name, version, digest = item.get("name"), item.get("version"), item.get("sha256")
        if not (
            isinstance(name, str)
            and _LOCK_NAME.match(name)
            and isinstance(version, str)
            and _LOCK_VERSION.match(version)
            and isinstance(digest, str)
            and _SHA256.match(digest)
        ):
            raise errors.InstallFailed(app, f"the lock holds a malformed entry: {item!r:.200}")
        pins.append(Pin(name=name, version=version, hashes=(f"sha256:{digest}",)))
    return pins


def _requirements(path: Path, pins: Sequence[Pin]) -> str:
    """Write pins as a requirements file that graphrun composed (no text of the app's own)."""
    path.write_text("".join(p.line + "\n" for p in pins))
    return str(path)


def _scrubbed_env() -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,  # no pip.conf, global, user or site
            "PIP_NO_INPUT": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PYTHONNOUSERSITE": "1",
        }
    )
    return env


async def _spawn(
    argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout ends pip's children too
    )
    try:
        async with asyncio.timeout(timeout):  # not wait_for: a cancel must win (3.11)
            output, _ = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return -9, f"timed out after {timeout:.0f} s"
    return process.returncode or 0, output.decode("utf-8", "replace")


def _engine_path_file() -> str:
    """A .pth body that makes graphrun's own packages importable after the app's."""
    dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
    return "".join(f"import site; site.addsitedir({d!r})\n" for d in dirs)


async def build_environment(
    *,
    app: str,
    pins: Sequence[Pin],
    target: Path,
    index_url: str = DEFAULT_INDEX_URL,
    timeout_s: float = 600.0,
    spawn: Spawn | None = None,
    check_lock: Callable[[list[dict[str, Any]]], None] | None = None,
    engine: Mapping[str, str] | None = None,
) -> Environment:
    """Build (or reuse) the environment for ``pins`` at ``target``.

    Args:
        app: The app's name, for errors.
        pins: Validated requirements (`validate_requirements`, or `lock_pins`).
        target: The environment folder (`environment_path`).
        index_url: The package index; the only one consulted.
        timeout_s: Longest each subprocess may take.
        spawn: Starts the subprocesses (tests pass one that records calls).
        check_lock: Checks every package the specs resolve to, before any is installed.
        engine: What graphrun runs on (name to version): dependencies resolve to those
            versions, and those are not installed again (the environment sees graphrun's).

    Raises:
        InstallFailed: venv or pip failed; the log is in the error. Nothing was swapped in.
        RequirementRejected: ``check_lock`` refused a resolved package.
    """
    spawn = spawn or _spawn
    engine = dict(engine or {})
    marker = target / _MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        return Environment(path=target, lock=recorded["lock"], log="reused")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    env = _scrubbed_env()
    log: list[str] = []
    try:
        code, out = await spawn(
            [sys.executable, "-m", "venv", "--without-pip", str(staging / "env")],
            env,
            staging,
            timeout_s,
        )
        log.append(out)
        if code != 0:
            raise errors.InstallFailed(app, f"creating the environment failed ({code})", out)
        pip = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python_of(staging / "env")),
            "--isolated",
            "install",
            "--no-input",
            "--only-binary",
            ":all:",
            "--index-url",
            index_url,
        ]
        # 1. Resolve (nothing installed): every package the specs pull in, with its hash.
        resolved = staging / "resolved.json"
        argv = [*pip, "--dry-run", "--ignore-installed", "--report", str(resolved)]
        if engine:  # dependencies graphrun has too resolve to its versions (or fail here)
            constraints = staging / "engine.txt"
            constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(engine.items())))
            argv += ["-c", str(constraints)]
        if any(p.hashes for p in pins):
            argv += ["--require-hashes", "-r", _requirements(staging / "pins.txt", pins)]
        else:
            argv += ["--", *(p.requirement for p in pins)]
        code, out = await spawn(argv, env, staging, timeout_s)
        log.append(out)
        if code != 0:
            raise errors.InstallFailed(app, f"pip failed resolving ({code})", "\n".join(log))
        # What graphrun's own environment already has, at that version, it provides.
        lock = [
            item
            for item in _lock_of(json.loads(resolved.read_text()))
            if engine.get(item["name"]) != item["version"]
        ]
        # 2. The whole resolution passes the same rules as the specs, dependencies included.
        if check_lock is not None:
            check_lock(lock)
        # 3. Install exactly that: pinned, hash-checked, nothing resolved again.
        exact = lock_pins(lock, app=app)
        if exact:
            lock_file = _requirements(staging / "lock.txt", exact)
            argv = [*pip, "--require-hashes", "--no-deps", "-r", lock_file]
            code, out = await spawn(argv, env, staging, timeout_s)
            log.append(out)
            if code != 0:
                raise errors.InstallFailed(app, f"pip failed installing ({code})", "\n".join(log))
        env_dir = staging / "env"
        site_dirs = list(env_dir.glob("lib/python*/site-packages")) or [
            env_dir / "Lib/site-packages"
        ]
        (site_dirs[0] / _PTH).write_text(_engine_path_file())
        (env_dir / _MARKER).write_text(json.dumps({"app": app, "lock": lock}))
        try:
            os.rename(env_dir, target)  # atomic: the whole environment or none
        except OSError:
            if not marker.is_file():  # not another install of the same pins, finished first
                raise
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, ignore_errors=True)
    return Environment(path=target, lock=lock, log="\n".join(log))


def _lock_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Name, version and archive sha256 of everything pip installed (its ``--report``)."""
    lock = []
    for item in report.get("install", []):
        archive = item.get("download_info", {}).get("archive_info", {})
        digest = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").removeprefix(
            "sha256="
        )
        lock.append(
            {
                "name": item["metadata"]["name"].lower(),
                "version": item["metadata"]["version"],
                "sha256": digest,
            }
        )
    return sorted(lock, key=lambda x: x["name"])
