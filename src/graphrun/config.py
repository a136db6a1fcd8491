"""Engine settings: built once (from arguments or GRAPHRUN_* variables) and passed in."""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

__all__ = ("DEFAULT_DATABASE_URL", "DEFAULT_MAX_BODY_BYTES", "RetentionPolicy", "Settings")

DEFAULT_DATABASE_URL = "sqlite:///./graphrun.db"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


#: Largest request body the HTTP API accepts by default (``graphrun serve --max-body-bytes``).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


#: The statuses a retention policy ages out, and their default days.
RETENTION_DEFAULTS = {"completed": 30.0, "failed": 90.0, "cancelled": 7.0}


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """How long finished runs are kept, by status, globally and per workflow.

    Only ``completed``, ``failed`` and ``cancelled`` runs age out, counted from when they
    finished; a queued, running, waiting or paused run is never purged.
    """

    #: Days by status: ``completed``, ``failed``, ``cancelled``.
    days: tuple[tuple[str, float], ...] = tuple(RETENTION_DEFAULTS.items())
    #: Per workflow: ``(workflow, status, days)``, overriding ``days`` for that workflow.
    workflows: tuple[tuple[str, str, float], ...] = ()
    #: Days after which a completed run keeps only its last checkpoint (its final state and
    #: output stay readable; its history, and forks from earlier steps, go). None: never.
    keep_last_checkpoint_after: float | None = None

    def __post_init__(self) -> None:
        after = self.keep_last_checkpoint_after
        if after is not None and not after > 0:
            raise ValueError(f"keep_last_checkpoint_after must be > 0 days, got {after!r}")
        for status, days in (*self.days, *((s, d) for _, s, d in self.workflows)):
            if status not in RETENTION_DEFAULTS:
                raise ValueError(
                    f"retention applies to {sorted(RETENTION_DEFAULTS)}, not {status!r}"
                )
            if not days > 0:
                raise ValueError(f"retention days must be > 0, got {days!r} for {status}")

    @classmethod
    def from_json(cls, text: str) -> RetentionPolicy:
        """``{"completed": 30, "workflows": {"app.flow": {"completed": 365}}}``.

        ``"keep_last_checkpoint_after": 7`` compacts completed runs older than 7 days.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("GRAPHRUN_RETENTION must be a JSON object")
        per = data.pop("workflows", {}) or {}
        compact = data.pop("keep_last_checkpoint_after", None)
        days = {**RETENTION_DEFAULTS, **{k: float(v) for k, v in data.items()}}
        return cls(
            days=tuple(days.items()),
            workflows=tuple(
                (workflow, status, float(d))
                for workflow, by_status in per.items()
                for status, d in by_status.items()
            ),
            keep_last_checkpoint_after=None if compact is None else float(compact),
        )

    def days_for(self, status: str, workflow: str | None = None) -> float:
        """How many days runs of ``workflow`` (or any, for None) in ``status`` are kept."""
        for name, s, d in self.workflows:
            if name == workflow and s == status:
                return d
        return dict(self.days)[status]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything an `Engine` is configured with.

    Attributes:
        database_url: SQLAlchemy-style URL; ``sqlite:///path`` or ``postgresql://...``.
        sqlite_synchronous: ``full`` survives power loss; ``normal`` only process crashes.
        concurrency: Runs one process executes at once.
        lease_ttl_s: How long a claim lives without a heartbeat.
        heartbeat_interval_s: How often a worker renews its leases.
        poll_interval_s: How often a worker looks for work it was not told about.
        worker_id: This process's identity in leases; unique per process.
        run_worker: Whether the engine executes runs itself or only manages them.
        busy_timeout_s: SQLite lock wait before `StorageBusy`; on PostgreSQL every
            statement's deadline (``statement_timeout`` and ``lock_timeout``).
        stream_max_s: How long the API keeps one event stream open; the client then
            reconnects with ``Last-Event-ID`` (browsers do it on their own) and misses nothing.
        signal_queue_limit: Unconsumed signals one run's mailbox may hold; past it a
            signal is refused (``signal_queue_full``) rather than stored.
        pg_pool_size: PostgreSQL connections this process keeps for its transactions (a
            quarter as many more commit step batches, one more listens for wake-ups).
        home: Where graphrun keeps files of its own: app environments (``envs/``) and the
            unpacked files of app versions that unfinished runs need (``versions/``).
        index_url: The one package index ``graphrun apps install`` installs from.
        install_timeout_s: Longest one install step (venv, pip) may take.
        allowed_packages: Package names apps may depend on (None: any on the index).
        allowed_extras: ``name[extra]`` forms apps may ask for (none by default).
        max_packages: Most dependencies one app may list.
        retention: How long finished runs are kept (``GRAPHRUN_RETENTION``, JSON).
        purge_interval_s: How often a worker purges what the policy ages out (0: never).
    """

    database_url: str = DEFAULT_DATABASE_URL
    sqlite_synchronous: Literal["full", "normal"] = "full"
    concurrency: int = 100
    lease_ttl_s: float = 30.0
    heartbeat_interval_s: float = 10.0
    poll_interval_s: float = 1.0
    worker_id: str = field(default_factory=_default_worker_id)
    run_worker: bool = True
    busy_timeout_s: float = 30.0
    stream_max_s: float = 300.0
    signal_queue_limit: int = 1000
    pg_pool_size: int = 8
    home: Path = Path(".graphrun")
    index_url: str = "https://pypi.org/simple"
    install_timeout_s: float = 600.0
    allowed_packages: frozenset[str] | None = None
    allowed_extras: frozenset[str] = frozenset()
    max_packages: int = 50
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    purge_interval_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.signal_queue_limit < 1:
            raise ValueError("signal_queue_limit must be at least 1")
        if self.pg_pool_size < 1:
            raise ValueError("pg_pool_size must be at least 1")
        if self.heartbeat_interval_s >= self.lease_ttl_s:
            raise ValueError("heartbeat_interval_s must be shorter than lease_ttl_s")
        if self.sqlite_synchronous not in ("full", "normal"):
            raise ValueError("sqlite_synchronous must be 'full' or 'normal'")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``GRAPHRUN_*`` variables, then apply explicit overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if url := env.get("GRAPHRUN_DATABASE_URL"):
            values["database_url"] = url
        if home := env.get("GRAPHRUN_HOME"):
            values["home"] = Path(home)
        if index := env.get("GRAPHRUN_INDEX_URL"):
            values["index_url"] = index
        if allowed := env.get("GRAPHRUN_ALLOWED_PACKAGES"):
            values["allowed_packages"] = frozenset(
                n.strip() for n in allowed.split(",") if n.strip()
            )
        if retention := env.get("GRAPHRUN_RETENTION"):
            values["retention"] = RetentionPolicy.from_json(retention)
        if extras := env.get("GRAPHRUN_ALLOWED_EXTRAS"):
            values["allowed_extras"] = frozenset(e.strip() for e in extras.split(",") if e.strip())
        if sync := env.get("GRAPHRUN_SQLITE_SYNCHRONOUS"):
            values["sqlite_synchronous"] = sync.lower()
        for name, key in (
            ("concurrency", "GRAPHRUN_CONCURRENCY"),
            ("lease_ttl_s", "GRAPHRUN_LEASE_TTL"),
            ("heartbeat_interval_s", "GRAPHRUN_HEARTBEAT_INTERVAL"),
            ("poll_interval_s", "GRAPHRUN_POLL_INTERVAL"),
            ("stream_max_s", "GRAPHRUN_STREAM_MAX"),
            ("signal_queue_limit", "GRAPHRUN_SIGNAL_QUEUE_LIMIT"),
            ("pg_pool_size", "GRAPHRUN_PG_POOL_SIZE"),
            ("busy_timeout_s", "GRAPHRUN_BUSY_TIMEOUT"),
            ("install_timeout_s", "GRAPHRUN_INSTALL_TIMEOUT"),
            ("max_packages", "GRAPHRUN_MAX_PACKAGES"),
            ("purge_interval_s", "GRAPHRUN_PURGE_INTERVAL"),
        ):
            if raw := env.get(key):
                integral = name in (
                    "concurrency",
                    "signal_queue_limit",
                    "pg_pool_size",
                    "max_packages",
                )
                values[name] = int(raw) if integral else float(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)  # type: ignore[arg-type]
