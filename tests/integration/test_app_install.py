"""`install_app` validates every spec before any subprocess starts; the engine stays as it was."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import httpx
import pytest

from graphrun import Engine
from graphrun.api import create_app
from graphrun.config import Settings
from graphrun.errors import InstallFailed, RequirementRejected
from tests.conftest import TEST_TIMINGS
from tests.unit.apps.test_requirements import REFUSED

ROWS = {
    27: ["foo; rm -rf /"],
    28: [
        "git+https://github.com/x/y.git",
        "y @ git+https://github.com/x/y.git",
        "foo @ https://example.com/x.tar.gz",
        "foo @ file:///etc/passwd",
        "foo @ ./bar",
        "./localpkg",
        "../../x",
    ],
    29: [
        "-e .",
        "--index-url=https://evil.example/simple",
        "--extra-index-url https://evil.example/simple",
        "-r /etc/passwd",
        "--trusted-host evil.example",
    ],
    30: ["foo$(id)", "foo`id`", "foo==1.0\nbar==2.0", "foo==1.0\x00"],
    31: ["requests", "requests>=2", "requests===1.0", "requests==2.*"],
    32: ["six==1.16.0", "httpx[socks]==0.28.1"],  # the allow-list below; extras not allowed
}


class Spawned:
    """Records what an install would run, and runs nothing."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(
        self, argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
    ) -> tuple[int, str]:
        self.calls.append(list(argv))
        return 1, "not run in this test"


def write_app(folder: Path, name: str, dependencies: list[str]) -> Path:
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text("")
    (folder / name / "flows.py").write_text(
        "from langgraph.graph import StateGraph\n"
        "from typing_extensions import TypedDict\n"
        "class S(TypedDict):\n    x: int\n"
        "flow = StateGraph(S)\nflow.add_node('n', lambda s: {'x': 1})\n"
        "flow.set_entry_point('n')\n"
    )
    deps = ", ".join(f'"{d}"' for d in dependencies).replace("\n", "\\n").replace("\x00", "\\u0000")
    (folder / "graphrun.toml").write_text(
        f'[app]\nname = "{name}"\ndependencies = [{deps}]\n[workflows]\nflow = "{name}.flows:flow"\n'
    )
    return folder


def installed() -> dict[str, str]:
    return {d.metadata["Name"]: d.version for d in metadata.distributions()}


@pytest.mark.parametrize("row", sorted(ROWS))
async def test_bad_specs_are_rejected_before_any_subprocess_starts(
    db_url: str, tmp_path: Path, row: int
) -> None:
    settings = Settings(
        database_url=db_url,
        home=tmp_path / "home",
        allowed_packages=frozenset({"httpx"}),
        run_worker=False,
        **TEST_TIMINGS,
    )
    before, path_before = installed(), list(sys.path)
    async with Engine(settings=settings) as engine:
        spawned = Spawned()
        engine.apps.host.spawn = spawned
        for i, spec in enumerate(ROWS[row]):
            app = write_app(tmp_path / f"app{i}", f"deps{row}_{i}", [spec])
            with pytest.raises(RequirementRejected) as info:
                await engine.apps.install(app)
            assert info.value.problems[0]["spec"] == spec
            if spec in REFUSED:
                assert REFUSED[spec] in info.value.problems[0]["message"]
    assert spawned.calls == []  # nothing ran: no venv, no pip
    assert not (tmp_path / "home").exists()
    assert (installed(), sys.path) == (before, path_before)  # the engine's own env unchanged


async def test_install_over_http_needs_admin_and_answers_422_for_a_bad_spec(
    db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=db_url, home=tmp_path / "home", run_worker=False, **TEST_TIMINGS
    )
    async with Engine(settings=settings) as engine:
        spawned = Spawned()
        engine.apps.host.spawn = spawned
        keys = {s: (await engine.keys.create(s, [s])).token for s in ("write", "admin")}
        bad = write_app(tmp_path / "bad", "deps_http", ["foo @ file:///etc/passwd"])
        good = write_app(tmp_path / "good", "deps_good", ["six==1.16.0"])
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def install(path: Path, scope: str) -> httpx.Response:
                headers = {"Authorization": f"Bearer {keys[scope]}"}
                return await client.post("/apps/install", json={"path": str(path)}, headers=headers)

            assert (await install(bad, "write")).status_code == 403
            refused = await install(bad, "admin")
            assert spawned.calls == []
            failed = await install(good, "admin")  # spawn answers 1: venv "fails"
            listed = await client.get("/apps", headers={"Authorization": f"Bearer {keys['write']}"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "requirement_rejected"
    assert failed.status_code == 422
    assert failed.json()["code"] == "install_failed"
    venv_argv = spawned.calls[0]
    assert venv_argv[1:4] == ["-m", "venv", "--without-pip"]
    assert [a["name"] for a in listed.json()] == ["deps_good"]  # its version is stored
    assert listed.json()[0]["versions"][0]["installed_at"] is None
    assert not list((tmp_path / "home" / "envs").rglob("graphrun-environment.json"))


async def test_a_failed_pip_leaves_nothing_swapped_in(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=db_url, home=tmp_path / "home", run_worker=False, **TEST_TIMINGS
    )
    app = write_app(tmp_path / "app", "deps_fail", ["six==1.16.0"])
    calls: list[list[str]] = []

    async def venv_ok_pip_fails(
        argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float
    ) -> tuple[int, str]:
        calls.append(list(argv))
        if "venv" in argv:
            Path(argv[-1], "bin").mkdir(parents=True)
            return 0, ""
        return 1, "ERROR: No matching distribution found for six==1.16.0"

    async with Engine(settings=settings) as engine:
        engine.apps.host.spawn = venv_ok_pip_fails
        with pytest.raises(InstallFailed, match="pip failed") as info:
            await engine.apps.install(app)
    pip = calls[1]
    assert pip[pip.index("--") + 1 :] == ["six==1.16.0"]  # specs after --, as a list
    assert {"--only-binary", ":all:", "--index-url", "--isolated"} <= set(pip)
    assert "No matching distribution" in info.value.log
    assert not list((tmp_path / "home" / "envs").rglob("*/bin"))  # staging removed


@pytest.mark.parametrize(
    ("row", "flows", "message"),
    [
        (41, 'flow = "json:loads"', "shadow"),
        (41, 'flow = "langgraph.graph:StateGraph"', "shadow"),
        (41, 'flow = "Deps41.flows:flow"', "must match"),
    ],
)
async def test_row_41_a_module_shadowing_the_stdlib_or_engine_is_refused_with_422(
    db_url: str, tmp_path: Path, row: int, flows: str, message: str
) -> None:
    settings = Settings(
        database_url=db_url, home=tmp_path / "home", run_worker=False, **TEST_TIMINGS
    )
    app = tmp_path / "app"
    app.mkdir()
    (app / "graphrun.toml").write_text(
        f'[app]\nname = "deps{row}"\ndependencies = ["six==1.16.0"]\n[workflows]\n{flows}\n'
    )
    before = installed()
    async with Engine(settings=settings) as engine:
        spawned = Spawned()
        engine.apps.host.spawn = spawned
        key = (await engine.keys.create("admin", ["admin"])).token
        transport = httpx.ASGITransport(app=create_app(engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post(
                "/apps/install", json={"path": str(app)}, headers={"Authorization": f"Bearer {key}"}
            )
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_manifest"
    assert message in answer.json()["message"]
    assert spawned.calls == []
    assert installed() == before
