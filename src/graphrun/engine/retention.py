"""Retention (``engine.retention``): what the policy would delete, and deleting it."""

from __future__ import annotations

import asyncio
import logging

from graphrun import errors
from graphrun.storage import retention, store

from .core import Core

__all__ = ("Retention",)

logger = logging.getLogger("graphrun.engine")


class Retention:
    """The retention policy of an engine, applied on demand and now and then."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def stats(self) -> retention.RetentionStats:
        """Runs by status and age, what they hold, and what the next purge would delete."""
        return await retention.stats(self._core.db, self._core.settings.retention)

    async def purge(
        self, *, dry_run: bool = False, batch_size: int = retention.DEFAULT_BATCH
    ) -> retention.PurgeReport:
        """Delete the finished runs the retention policy ages out, with all that is theirs.

        In batches of ``batch_size`` runs, each its own short transaction; a queued, running,
        waiting or paused run is never touched. Then, if the policy has
        ``keep_last_checkpoint_after``, old completed runs keep only their last checkpoint.
        Store items whose TTL ran out go too. With ``dry_run``, only count what the purge
        deletes (of runs).
        """
        report = await retention.purge(
            self._core.db, self._core.settings.retention, dry_run=dry_run, batch_size=batch_size
        )
        if not dry_run and (expired := await store.sweep_expired(self._core.db)):
            logger.info("%d expired store items deleted", expired, extra={"action": "store_sweep"})
        if not dry_run and (report.rows["runs"] or report.compacted_runs):
            logger.info("purged %s", report.to_json(), extra={"action": "purge"})
        return report

    async def run_periodically(self) -> None:
        """Purge what the policy ages out now and then (every worker; one at a time on PG)."""
        while True:
            await asyncio.sleep(self._core.settings.purge_interval_s)
            try:
                await self.purge()
            except Exception as exc:  # the next round tries again
                logger.warning(
                    "purge failed: %s",
                    exc,
                    exc_info=not isinstance(exc, errors.StorageError),
                    extra={"action": "purge_failed"},
                )
