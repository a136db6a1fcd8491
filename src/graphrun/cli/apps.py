"""``graphrun apps``: check an app folder, install its dependencies, list apps and versions."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from graphrun import errors
from graphrun.apps import AppManifest, load_app, read_manifest
from graphrun.apps.environments import python_of
from graphrun.config import Settings
from graphrun.engine.app_host import environment_of, runs_in_own_environment

from ._common import DbOption, JsonOption, console, err_console, make_engine, print_json, run_async

__all__ = (
    "app",
    "check",
    "install",
    "list_apps",
)

app = typer.Typer(
    help="Apps: check a folder, install its dependencies, list apps and versions.",
    no_args_is_help=True,
)

PathArgument = Annotated[Path, typer.Argument(help="The app folder (holding graphrun.toml).")]


def _problems(exc: errors.GraphrunError) -> list[dict[str, Any]]:
    if isinstance(exc, errors.DefinitionError):
        return exc.problems
    if isinstance(exc, errors.RequirementRejected):
        return [
            {"file": "graphrun.toml", "line": None, "message": f"{p['spec']!r}: {p['message']}"}
            for p in exc.problems
        ]
    return [{"file": None, "line": None, "message": exc.message}]


@app.command("check")
def check(path: PathArgument, as_json: JsonOption = False) -> None:
    """Validate an app without starting anything: every problem is listed.

    Checks the manifest, the dependency specs, each YAML workflow and the functions it
    names (their modules are imported); no database is touched.
    """
    try:
        manifest = read_manifest(path)
        if manifest.pins and not runs_in_own_environment(Settings.from_env(), manifest):
            raise typer.Exit(_check_in_environment(manifest, path, as_json))
        loaded = load_app(path)
    except (errors.InvalidInput, errors.AppLoadError, errors.NotFound) as exc:
        problems = _problems(exc)
        if as_json:
            print_json(console, {"ok": False, "code": exc.code, "problems": problems})
        else:
            for problem in problems:
                where = ":".join(str(p) for p in (problem["file"], problem["line"]) if p)
                err_console.print(
                    f"{where + ': ' if where else ''}{problem['message']}",
                    highlight=False,
                    markup=False,
                )
            err_console.print(
                f"[red]{exc.code}[/]: {len(problems)} problem(s) in {path}", highlight=False
            )
        raise typer.Exit(1) from None
    workflows = [{"name": w.name, "kind": w.kind, "version": w.version} for w in loaded.workflows]
    if as_json:
        print_json(
            console,
            {
                "ok": True,
                "app": loaded.manifest.name,
                "version": loaded.version,
                "workflows": workflows,
            },
        )
        return
    console.print(
        f"app [bold]{loaded.manifest.name}[/] ok, version {loaded.version}", highlight=False
    )
    for w in workflows:
        console.print(f"  {w['name']}  {w['kind']}  {w['version']}", highlight=False)


def _check_in_environment(manifest: AppManifest, path: Path, as_json: bool) -> int:
    """Check an app with dependencies under its own environment's Python (never here)."""
    python = python_of(environment_of(Settings.from_env(), manifest))
    if not python.exists():
        err_console.print(
            f"app {manifest.name!r} has dependencies: its code is checked in its own environment; "
            f"run `graphrun apps install {path}` first",
            highlight=False,
        )
        return 1
    argv = [
        str(python),
        "-m",
        "graphrun",
        "apps",
        "check",
        str(path),
        *(["--json"] if as_json else []),
    ]
    return subprocess.run(argv, check=False).returncode  # noqa: S603 - our own command, as a list


@app.command("install")
def install(path: PathArgument, database: DbOption = None, as_json: JsonOption = False) -> None:
    """Validate an app's dependencies and build the environment its workers run on.

    Every spec is checked first (pinned with ==, no URLs, paths or options; hashes are
    honoured); a refused spec starts nothing. The environment is built aside and swapped in
    whole; the exact packages installed (versions and sha256) are recorded in the database,
    and another machine installing the same app version gets exactly those.
    """

    async def main() -> int:
        async with make_engine(database, [], run_worker=False) as engine:
            result = await engine.apps.install(path)
        if as_json:
            print_json(
                console,
                {
                    "app": result.app,
                    "version": result.version,
                    "environment": str(result.environment),
                    "python": str(result.python),
                    "lock": result.lock,
                    "reused": result.reused,
                },
            )
            return 0
        verb = "already installed" if result.reused else "installed"
        console.print(f"app [bold]{result.app}[/] version {result.version} {verb}", highlight=False)
        for item in result.lock:
            console.print(
                f"  {item['name']}=={item['version']}  sha256:{item['sha256']}", highlight=False
            )
        console.print(
            f"its workers run on {result.python}; `graphrun serve --app {path}` starts them, or by "
            f"hand: {result.python} -m graphrun worker --app {path}",
            highlight=False,
        )
        return 0

    raise typer.Exit(run_async(main))


@app.command("list")
def list_apps(database: DbOption = None, as_json: JsonOption = False) -> None:
    """Apps the database knows: status, versions, and unfinished runs on each version."""

    async def main() -> int:
        async with make_engine(database, [], run_worker=False) as engine:
            overview = await engine.apps.overview()
        if as_json:
            print_json(console, {"apps": [a.to_json() for a in overview]})
            return 0
        if not overview:
            console.print("no apps yet: a worker or `graphrun serve --app PATH` records them")
        for entry in overview:
            colour = "green" if entry.status == "ok" else "red"
            console.print(f"[bold]{entry.name}[/]  [{colour}]{entry.status}[/]", highlight=False)
            if entry.error:
                console.print(f"  {entry.error['message']}", highlight=False, markup=False)
            for v in entry.versions:
                mark = "*" if v["current"] else " "
                deps = f"  deps: {len(v['dependencies'])}" if v["dependencies"] else ""
                installed = "  installed" if v["installed_at"] else ""
                console.print(
                    f" {mark} {v['version']}  unfinished runs: {v['unfinished_runs']}{deps}{installed}",
                    highlight=False,
                )
        return 0

    raise typer.Exit(run_async(main))
