from __future__ import annotations

import pytest

from graphrun import Settings


def test_settings_from_env_reads_graphrun_variables() -> None:
    settings = Settings.from_env(
        {
            "GRAPHRUN_DATABASE_URL": "sqlite:///x.db",
            "GRAPHRUN_CONCURRENCY": "7",
            "GRAPHRUN_LEASE_TTL": "40",
        }
    )
    assert (settings.database_url, settings.concurrency, settings.lease_ttl_s) == (
        "sqlite:///x.db",
        7,
        40.0,
    )


def test_settings_overrides_win_over_env() -> None:
    settings = Settings.from_env({"GRAPHRUN_CONCURRENCY": "7"}, concurrency=3)
    assert settings.concurrency == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"concurrency": 0},
        {"heartbeat_interval_s": 30.0, "lease_ttl_s": 30.0},
        {"sqlite_synchronous": "off"},
    ],
)
def test_settings_refuse_unsafe_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Settings(**bad)  # type: ignore[arg-type]


def test_retention_policy_from_env() -> None:
    text = (
        '{"completed": 10, "workflows": {"app.flow": {"failed": 365}},'
        ' "keep_last_checkpoint_after": 2}'
    )
    policy = Settings.from_env({"GRAPHRUN_RETENTION": text}).retention
    assert policy.days_for("completed") == 10.0
    assert policy.days_for("failed") == 90.0  # the default, for other workflows
    assert policy.days_for("failed", "app.flow") == 365.0
    assert policy.days_for("cancelled", "app.flow") == 7.0
    assert policy.keep_last_checkpoint_after == 2.0
    assert Settings().retention.keep_last_checkpoint_after is None


@pytest.mark.parametrize(
    "text",
    ['{"running": 3}', '{"completed": 0}', '{"keep_last_checkpoint_after": -1}', "[1]"],
)
def test_a_retention_policy_that_could_purge_wrongly_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"GRAPHRUN_RETENTION": text})
