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
