"""Apps with their own dependencies: real installs from the package index, real worker processes.

Two apps pin different versions of one small pure-Python package (six 1.16.0 and 1.17.0,
wheels on PyPI); each app's runs see its own version, and the engine process imports
neither the package nor the apps.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from graphrun import Engine, InstallFailed, RunStatus
from graphrun.config import Settings
from tests.conftest import TEST_TIMINGS

pytestmark = pytest.mark.acceptance

#: six 1.16.0's wheel on PyPI (py2.py3-none-any).
SIX_1_16_SHA256 = "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"

FLOWS = """\
import sys

import six
from langgraph.graph import END, START, StateGraph
from typing_extensions import NotRequired, TypedDict


class State(TypedDict):
    seen: NotRequired[dict]


def look(state):
    return {"seen": {"six": six.__version__, "file": six.__file__, "prefix": sys.prefix}}


flow = StateGraph(State)
flow.add_node("look", look)
flow.add_edge(START, "look")
flow.add_edge("look", END)
"""


def write_app(folder: Path, name: str, pin: str) -> Path:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "flows.py").write_text(FLOWS)
    (folder / "graphrun.toml").write_text(
        f'[app]\nname = "{name}"\ndependencies = ["{pin}"]\n[workflows]\nlook = "{name}.flows:flow"\n'
    )
    return folder


async def test_two_apps_pinning_different_versions_each_see_their_own(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    old = write_app(tmp_path / "old", "six_old", f"six==1.16.0 --hash=sha256:{SIX_1_16_SHA256}")
    new = write_app(tmp_path / "new", "six_new", "six==1.17.0")
    settings = Settings(database_url=db_url, home=home, **TEST_TIMINGS)
    async with Engine(settings=settings, run_worker=False) as admin:
        first = await admin.apps.install(old)
        second = await admin.apps.install(new)
        again = await admin.apps.install(old)  # the same pins: the environment is reused
    assert first.lock == [{"name": "six", "version": "1.16.0", "sha256": SIX_1_16_SHA256}]
    assert [(i["name"], i["version"]) for i in second.lock] == [("six", "1.17.0")]
    assert all(len(i["sha256"]) == 64 for i in first.lock + second.lock)
    assert again.reused
    assert again.environment == first.environment

    async with Engine(apps=[old, new], settings=settings) as engine:
        assert sorted(engine.apps.isolated()) == ["six_new", "six_old"]
        assert engine.workflows.loaded_names() == []  # neither app is imported here
        runs = {name: await engine.start(f"{name}.look", {}) for name in ("six_old", "six_new")}
        done = {name: await engine.wait(run.id, timeout=90) for name, run in runs.items()}
        listed = {a.name: a for a in await engine.apps.overview()}
    for name, version in (("six_old", "1.16.0"), ("six_new", "1.17.0")):
        run = done[name]
        assert run.status is RunStatus.COMPLETED, run.error
        assert run.output["seen"]["six"] == version
        assert run.output["seen"]["file"].startswith(str(home.resolve() / "envs" / name))
        assert listed[name].status == "ok"
        assert listed[name].versions[0]["lock"][0]["version"] == version
    assert "six" not in sys.modules
    assert not {"six_old", "six_new"} & set(sys.modules)
    print(f"installs: six 1.16.0 and 1.17.0 in {home}; each app's runs saw its own version")

    # the engine supervises its app workers: one killed with SIGKILL is started again
    async with Engine(apps=[old], settings=settings) as engine:
        pid = engine.apps.host.workers.pid("six_old")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        run = await engine.start("six_old.look", {})
        run = await engine.wait(run.id, timeout=90)
        restarted = engine.apps.host.workers.pid("six_old")
    assert run.status is RunStatus.COMPLETED
    assert restarted not in (None, pid)


async def test_an_app_with_dependencies_not_installed_here_is_failed_and_the_others_serve(
    db_url: str, tmp_path: Path
) -> None:
    missing = write_app(tmp_path / "missing", "six_missing", "six==1.16.0")
    settings = Settings(database_url=db_url, home=tmp_path / "home", **TEST_TIMINGS)
    linear = Path(__file__).parents[1] / "apps" / "linear"
    async with Engine(apps=[missing, linear], settings=settings, strict_apps=False) as engine:
        run = await engine.start("linear.ten", {"x": 0})
        run = await engine.wait(run.id, timeout=30)
        listed = {a.name: a for a in await engine.apps.overview()}
    assert run.status is RunStatus.COMPLETED
    assert listed["six_missing"].status == "failed"
    assert "graphrun apps install" in listed["six_missing"].error["message"]
    assert listed["linear"].status == "ok"


async def test_a_hash_that_does_not_match_fails_the_install_and_installs_nothing(
    db_url: str, tmp_path: Path
) -> None:
    wrong = "0" * 64
    app = write_app(tmp_path / "app", "six_wrong", f"six==1.16.0 --hash=sha256:{wrong}")
    settings = Settings(database_url=db_url, home=tmp_path / "home", **TEST_TIMINGS)
    async with Engine(settings=settings, run_worker=False) as admin:
        with pytest.raises(InstallFailed) as info:
            await admin.apps.install(app)
        listed = await admin.apps.overview()
    assert "DO NOT MATCH" in info.value.log.upper()
    assert listed[0].versions[0]["installed_at"] is None
    assert not list((tmp_path / "home" / "envs").rglob("graphrun-environment.json"))


def test_a_supervised_worker_ends_when_its_supervisor_is_killed(
    db_url: str, tmp_path: Path
) -> None:
    import subprocess

    import psutil

    linear = Path(__file__).parents[1] / "apps" / "linear"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "env = dict(os.environ, GRAPHRUN_SUPERVISOR_PID=str(os.getpid()))\n"
            f"worker = subprocess.Popen([sys.executable, '-m', 'graphrun', 'worker', '--app', {str(linear)!r}], env=env)\n"
            "print(worker.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        env={**os.environ, "GRAPHRUN_DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert supervisor.stdout is not None
    worker = psutil.Process(int(supervisor.stdout.readline()))
    for line in supervisor.stdout:  # the worker prints this line once it serves
        if "serving linear.ten" in line:
            break
    supervisor.kill()  # SIGKILL: no chance to stop its worker
    supervisor.wait()
    supervisor.stdout.close()
    gone, alive = psutil.wait_procs([worker], timeout=30)
    for process in alive:
        process.kill()
    assert gone, "the worker outlived its supervisor"
