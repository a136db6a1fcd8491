"""The `graphrun` command end to end, as `make run` uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphrun.storage import migrations
from tests.conftest import APPS, EXAMPLES

ORDER = {"order_id": "C1", "items": [{"sku": "tea", "qty": 2, "price": 80.0}]}


def graphrun(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRAPHRUN_DATABASE_URL": db_url, "GRAPHRUN_POLL_INTERVAL": "0.05"}
    return subprocess.run(
        [sys.executable, "-m", "graphrun", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.acceptance
def test_run_wait_for_input_resume_through_the_cli(db_url: str) -> None:
    app = str(EXAMPLES / "orders")
    started = graphrun(db_url, "run", "orders.fulfil", "--app", app, "--input", json.dumps(ORDER))
    assert started.returncode == 0, started.stderr
    assert "✓ validate" in started.stdout
    assert "✓ price" in started.stdout
    assert "waiting for input" in started.stdout
    listed = json.loads(graphrun(db_url, "runs", "list", "--json", "--status", "waiting").stdout)
    (run,) = listed["runs"]
    assert run["waiting_for"][0]["prompt"] == {"question": "Approve order C1 for 160.00?"}

    refused = graphrun(db_url, "runs", "resume", run["id"], "--value", '{"approved": "maybe"}')
    assert refused.returncode == 1
    assert "validation_failed" in refused.stderr
    assert "/approved" in refused.stderr
    still = json.loads(graphrun(db_url, "runs", "show", run["id"], "--json").stdout)
    assert still["status"] == "waiting"

    resumed = graphrun(
        db_url, "runs", "resume", run["id"], "--value", '{"approved": true}', "--app", app
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "✓ approve" in resumed.stdout
    assert "✓ ship" in resumed.stdout
    assert "✓ validate" not in resumed.stdout
    shown = json.loads(graphrun(db_url, "runs", "show", run["id"], "--json").stdout)
    assert shown["status"] == "completed"
    assert shown["output"]["tracking"] == "trk-C1"


@pytest.mark.acceptance
def test_cli_failures_are_clear_and_typed(db_url: str, tmp_path: Path) -> None:
    broken = graphrun(db_url, "run", "broken.oops", "--app", str(APPS / "broken"))
    assert broken.returncode == 1
    assert "app_load_error" in broken.stderr
    assert "broken on purpose" in broken.stderr
    assert "Traceback" not in broken.stderr
    bad_json = graphrun(
        db_url, "run", "orders.fulfil", "--app", str(EXAMPLES / "orders"), "--input", "{nope"
    )
    assert bad_json.returncode == 2
    assert "--input is not valid JSON" in bad_json.stderr
    missing = graphrun(db_url, "runs", "show", "0190a0b0-0000-7000-8000-000000000000")
    assert missing.returncode == 1
    assert "run_not_found" in missing.stderr
    upgraded = graphrun(f"sqlite:///{tmp_path}/fresh.db", "db", "upgrade")
    assert upgraded.returncode == 0
    assert f"revision {migrations.head_revision()}" in upgraded.stdout


@pytest.mark.acceptance
def test_cancel_and_retry_through_the_cli(db_url: str, tmp_path: Path) -> None:
    app = str(APPS / "flaky")
    value = json.dumps({"marker": str(tmp_path / "marker"), "log": str(tmp_path / "log")})
    failed = graphrun(db_url, "run", "flaky.once", "--app", app, "--input", value, "--json")
    assert failed.returncode == 1
    run = json.loads(failed.stdout)
    assert run["error"]["node"] == "middle"
    (tmp_path / "marker").touch()
    retried = graphrun(db_url, "runs", "retry", run["id"], "--app", app, "--json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "completed"
    again = graphrun(db_url, "runs", "cancel", run["id"])
    assert again.returncode == 1
    assert "invalid_transition" in again.stderr


@pytest.mark.acceptance
def test_make_run_script_runs_the_example_end_to_end(db_url: str) -> None:
    script = EXAMPLES / "run_orders.sh"
    env = {**os.environ, "GRAPHRUN_DATABASE_URL": db_url}
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "✓ price" in done.stdout
    assert "validation_failed" in done.stderr
    assert "completed" in done.stdout
