"""The `graphrun` command end to end, as `make run` uses it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphrun import Engine
from graphrun.storage import migrations
from tests.conftest import APPS, EXAMPLES, finish_days_ago

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


PRIMITIVES = str(APPS / "primitives")


async def _checkpoint_after(db_url: str, run_id: str, node: str) -> str:
    async with Engine(database_url=db_url, apps=[Path(PRIMITIVES)], run_worker=False) as engine:
        history = await engine.runs.history(run_id)
    [checkpoint] = [c for c in history if c.nodes == (node,)]
    return checkpoint.id


@pytest.mark.acceptance
def test_signal_a_waiting_run_through_the_cli(db_url: str) -> None:
    value = json.dumps({"count": 1, "items": []})
    started = graphrun(db_url, "run", "primitives.mailbox", "--app", PRIMITIVES, "-i", value)
    assert started.returncode == 0, started.stderr
    assert "waiting for signal item" in started.stdout
    assert "graphrun runs signal" in started.stdout
    (run,) = json.loads(graphrun(db_url, "runs", "list", "--json").stdout)["runs"]
    deadline = graphrun(
        db_url, "run", "primitives.deadline", "--app", PRIMITIVES, "-i", '{"seconds": 600}'
    )
    assert "waiting for signal approve until 20" in deadline.stdout  # its wake time

    undeclared = graphrun(db_url, "runs", "signal", run["id"], "other", "1")
    assert undeclared.returncode == 1
    assert "validation_failed" in undeclared.stderr
    assert "/name" in undeclared.stderr
    bad_json = graphrun(db_url, "runs", "signal", run["id"], "item", "{nope")
    assert bad_json.returncode == 2
    kept = graphrun(db_url, "runs", "signal", run["id"], "note", '{"a": 1}')
    assert kept.returncode == 0, kept.stderr
    assert "kept in the mailbox" in kept.stdout

    sent = graphrun(db_url, "runs", "signal", run["id"], "item", "7", "--app", PRIMITIVES, "--json")
    assert sent.returncode == 0, sent.stderr
    body = json.loads(sent.stdout)
    assert body["delivered"] is True
    assert body["signal"]["payload"] == 7
    assert body["run"]["status"] == "completed"
    assert body["run"]["output"]["items"] == [7]

    listed = graphrun(db_url, "runs", "signals", run["id"], "--json")
    assert listed.returncode == 0, listed.stderr
    signals = json.loads(listed.stdout)["signals"]
    assert [(s["name"], s["consumed_at"] is not None) for s in signals] == [
        ("note", False),
        ("item", True),
    ]
    table = graphrun(db_url, "runs", "signals", run["id"])
    assert "note" in table.stdout
    assert '{"a": 1}' in table.stdout
    ended = graphrun(db_url, "runs", "signal", run["id"], "item", "8")
    assert ended.returncode == 1
    assert "invalid_transition" in ended.stderr


@pytest.mark.acceptance
def test_fork_pause_and_resume_through_the_cli(db_url: str) -> None:
    value = json.dumps({"x": 0, "trail": []})
    done = graphrun(db_url, "run", "primitives.chain", "--app", PRIMITIVES, "-i", value, "--json")
    assert done.returncode == 0, done.stderr
    source = json.loads(done.stdout)
    assert source["output"]["x"] == 111
    after_a = asyncio.run(_checkpoint_after(db_url, source["id"], "a"))

    forked = graphrun(
        db_url,
        "runs",
        "fork",
        source["id"],
        "--checkpoint",
        after_a,
        "--update",
        '{"x": 1000}',
        "--app",
        PRIMITIVES,
        "--json",
    )
    assert forked.returncode == 0, forked.stderr
    new = json.loads(forked.stdout)
    assert new["status"] == "completed"
    assert new["output"] == {"x": 1110, "trail": ["a", "b", "c"]}
    assert new["forked_from"] == source["id"]
    unchanged = json.loads(graphrun(db_url, "runs", "show", source["id"], "--json").stdout)
    assert unchanged == source

    no_code = graphrun(db_url, "runs", "fork", source["id"], "--update", '{"x": 1}')
    assert no_code.returncode == 1
    assert "workflow_not_found" in no_code.stderr
    not_object = graphrun(
        db_url, "runs", "fork", source["id"], "--update", "[1]", "--app", PRIMITIVES
    )
    assert not_object.returncode == 2

    # without --app the fork stays queued: pause it, then resume it here
    queued = graphrun(db_url, "runs", "fork", source["id"], "--checkpoint", after_a, "--json")
    assert queued.returncode == 0, queued.stderr
    fork_id = json.loads(queued.stdout)["id"]
    assert json.loads(queued.stdout)["status"] == "queued"
    paused = graphrun(db_url, "runs", "pause", fork_id)
    assert paused.returncode == 0, paused.stderr
    assert "paused" in paused.stdout
    assert f"graphrun runs resume {fork_id}" in paused.stdout
    again = graphrun(db_url, "runs", "pause", fork_id)
    assert again.returncode == 1
    assert "invalid_transition" in again.stderr
    shown = graphrun(db_url, "runs", "show", fork_id)
    assert f"forked from {source['id']}" in shown.stdout
    resumed = graphrun(db_url, "runs", "resume", fork_id, "--app", PRIMITIVES, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == {"x": 111, "trail": ["a", "b", "c"]}


@pytest.mark.acceptance
def test_schedules_through_the_cli(db_url: str) -> None:
    chain = json.dumps({"x": 0, "trail": []})
    # running a workflow once publishes it to the catalog the schedule is checked against
    ran = graphrun(db_url, "run", "primitives.chain", "--app", PRIMITIVES, "-i", chain, "--json")
    assert ran.returncode == 0, ran.stderr
    added = graphrun(
        db_url,
        *("schedules", "add", "nightly", "primitives.chain"),
        *("--cron", "30 2 * * *", "--tz", "Europe/Riga", "--input", chain, "--json"),
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["timezone"] == "Europe/Riga"
    bad = graphrun(db_url, "schedules", "add", "bad", "primitives.chain", "--cron", "61 * * * *")
    assert bad.returncode == 1
    assert "Bad minute" in bad.stderr
    listed = json.loads(graphrun(db_url, "schedules", "list", "--json").stdout)
    assert [s["id"] for s in listed["schedules"]] == ["nightly"]
    assert "every" not in graphrun(db_url, "schedules", "list").stdout
    removed = graphrun(db_url, "schedules", "remove", "nightly")
    assert removed.returncode == 0, removed.stderr
    gone = graphrun(db_url, "schedules", "show", "nightly")
    assert gone.returncode == 1
    assert "schedule_not_found" in gone.stderr


@pytest.mark.acceptance
def test_apps_check_lists_every_problem_with_its_line_and_starts_nothing(
    tmp_path: Path, db_url: str
) -> None:
    good = graphrun(db_url, "apps", "check", str(EXAMPLES / "orders"))
    assert good.returncode == 0, good.stderr
    assert "orders.returns  yaml" in good.stdout
    app = tmp_path / "declared"
    subprocess.run(["cp", "-r", str(APPS / "declared"), str(app)], check=True)
    flow = app / "workflows" / "expense.yaml"
    flow.write_text(
        flow.read_text()
        .replace("to: payment}", "to: paymnt}")
        .replace("declared.steps:book", "declared.steps:boook")
    )
    bad = graphrun(db_url, "apps", "check", str(app), "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["code"] == "invalid_workflow_definition"
    lines = {(p["line"], p["message"].split(":")[0]) for p in report["problems"]}
    assert (51, "edge to unknown node 'paymnt'") in lines
    assert (42, "function 'declared.steps") in lines
    text = graphrun(db_url, "apps", "check", str(app))
    assert "workflows/expense.yaml:51: edge to unknown node 'paymnt'" in text.stderr
    if db_url.startswith("sqlite"):  # nothing started: not even the database was created
        assert not Path(db_url.removeprefix("sqlite:///")).exists()


@pytest.mark.acceptance
def test_apps_list_and_a_refused_install_through_the_cli(tmp_path: Path, db_url: str) -> None:
    app = str(EXAMPLES / "orders")
    order = {"order_id": "L1", "items": [{"sku": "tea", "qty": 1, "price": 500.0}]}
    started = graphrun(db_url, "run", "orders.fulfil", "--app", app, "--input", json.dumps(order))
    assert started.returncode == 0, started.stderr
    listed = json.loads(graphrun(db_url, "apps", "list", "--json").stdout)
    (orders,) = listed["apps"]
    assert (orders["name"], orders["status"]) == ("orders", "ok")
    assert orders["versions"][0]["unfinished_runs"] == 1  # the order waits for approval
    assert orders["versions"][0]["unfinished_by_workflow"] == {"orders.fulfil": 1}

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "graphrun.toml").write_text(
        '[app]\nname = "bad"\ndependencies = ["requests>=2", "x @ file:///etc/passwd"]\n'
        '[workflows]\nf = "bad.flows:f"\n'
    )
    refused = graphrun(db_url, "apps", "install", str(bad))
    assert refused.returncode == 1
    assert "requirement_rejected" in refused.stderr
    assert "'requests>=2': must be pinned" in refused.stderr
    assert "URLs, VCS and local paths" in refused.stderr


async def _finished_days_ago(db_url: str, run_id: str, days: float) -> None:
    async with Engine(database_url=db_url, run_worker=False) as engine:
        await finish_days_ago(engine, [run_id], days)


@pytest.mark.acceptance
def test_retention_stats_and_apply_through_the_cli(db_url: str) -> None:
    app = str(APPS / "linear")
    ids = []
    for _ in range(2):
        done = graphrun(db_url, "run", "linear.ten", "--app", app, "--input", '{"x": 0}', "--json")
        assert done.returncode == 0, done.stderr
        ids.append(json.loads(done.stdout)["id"])
    asyncio.run(_finished_days_ago(db_url, ids[0], 40))  # past the 30 days of completed runs

    stats = json.loads(graphrun(db_url, "retention", "stats", "--json").stdout)
    assert stats["next_purge"]["runs"] == 1
    assert stats["next_purge"]["checkpoints"] > 1
    assert sum(r["runs"] for r in stats["runs"]) == 2
    shown = graphrun(db_url, "retention", "stats")
    assert "completed" in shown.stdout
    assert "the next purge would delete" in shown.stdout

    dry = json.loads(graphrun(db_url, "retention", "apply", "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True
    assert dry["rows"] == stats["next_purge"]
    left = json.loads(graphrun(db_url, "runs", "list", "--json").stdout)
    assert len(left["runs"]) == 2  # the dry run deleted nothing

    applied = graphrun(db_url, "retention", "apply")
    assert applied.returncode == 0, applied.stderr
    assert "deleted: " in applied.stdout
    left = json.loads(graphrun(db_url, "runs", "list", "--json").stdout)
    assert [r["id"] for r in left["runs"]] == [ids[1]]


@pytest.mark.acceptance
def test_config_context_and_answers_through_the_cli(db_url: str) -> None:
    app = str(APPS / "fidelity")
    started = graphrun(
        db_url,
        "run",
        "fidelity.after_wait",
        "--app",
        app,
        "--config",
        json.dumps({"configurable": {"user": "u-1"}}),
        "--context",
        json.dumps({"user": "grace"}),
        "--json",
    )
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert (run["status"], run["context"]) == ("waiting", {"user": "grace"})
    answered = graphrun(
        db_url, "runs", "resume", run["id"], "--value", '"me"', "--app", app, "--json"
    )
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["output"]["seen"] == "me:grace:u-1"
    parallel = json.loads(
        graphrun(db_url, "run", "fidelity.parallel", "--app", app, "--json").stdout
    )
    answers = {w["id"]: "ok" for w in parallel["waiting_for"]}
    both = graphrun(
        db_url,
        "runs",
        "resume",
        parallel["id"],
        "--answers",
        json.dumps(answers),
        "--app",
        app,
        "--json",
    )
    assert both.returncode == 0, both.stderr
    assert sorted(json.loads(both.stdout)["output"]["runs"]) == ["finance", "legal"]
    refused = graphrun(
        db_url,
        "run",
        "fidelity.typed_dict",
        "--app",
        app,
        "--config",
        '{"configurable": {"thread_id": "x"}}',
    )
    assert refused.returncode != 0
    assert "/configurable/thread_id" in refused.stderr
