"""Schedules (``engine.schedules``): runs started at cron times or intervals.

The specs are checked and the due times computed by `engine.schedules`; the rows and the
firing, exactly once per due time across every engine, by `storage.schedules`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from graphrun import errors
from graphrun.storage import schedules as schedules_store
from graphrun.storage.records import ScheduleRecord

from .core import Core
from .schedules import check_spec, first_fire, next_after

__all__ = ("Schedules",)

logger = logging.getLogger("graphrun.engine")


class Schedules:
    """Schedules of an engine (``engine.schedules``): create, list, get, delete; firing."""

    def __init__(self, core: Core) -> None:
        self._core = core

    async def create(
        self,
        schedule_id: str,
        workflow: str,
        input: Any = None,
        *,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
    ) -> ScheduleRecord:
        """Start ``workflow`` with ``input`` at every cron time, or every ``every`` seconds.

        Each due time starts exactly one run, however many engines share the database; due
        times missed while no engine ran fire once, when one runs again.

        Args:
            schedule_id: A name for the schedule (``[a-z0-9][a-z0-9_.-]{0,63}``).
            workflow: ``app.workflow``.
            input: The input of every run; validated now against the workflow's schema.
            cron: A five-field cron expression, evaluated in ``timezone``.
            every: Or an interval in whole seconds (at least 1).
            timezone: An IANA time zone name for ``cron`` (default UTC).

        Raises:
            ValidationFailed: A field is invalid (bad cron, unknown time zone, bad input...).
            WorkflowNotFound: No loaded or published workflow has this name.
            ScheduleExists: The id is taken.
        """
        interval = check_spec(schedule_id, cron, every, timezone)
        _, normalized = await self._core.validated_input(workflow, input)
        return await schedules_store.create(
            self._core.db,
            schedules_store.NewSchedule(
                id=schedule_id,
                workflow=workflow,
                cron=cron,
                interval_s=interval,
                timezone=timezone,
                input=normalized,
                first_fire_at=first_fire(cron, interval, timezone, time.time()),
            ),
        )

    async def list_all(self) -> list[ScheduleRecord]:
        """Every schedule, by id."""
        return await schedules_store.list_all(self._core.db)

    async def get(self, schedule_id: str) -> ScheduleRecord:
        """One schedule.

        Raises:
            ScheduleNotFound: No such schedule.
        """
        found = await schedules_store.get(self._core.db, schedule_id)
        if found is None:
            raise errors.ScheduleNotFound(schedule_id)
        return found

    async def delete(self, schedule_id: str) -> None:
        """Remove a schedule; the runs it started are kept.

        Raises:
            ScheduleNotFound: No such schedule.
        """
        await schedules_store.delete_one(self._core.db, schedule_id)

    async def fire_due(self) -> int:
        """Start the runs of the schedules due now (the schedule loop calls this); how many."""
        fired = await schedules_store.fire_due(
            self._core.db, next_after=next_after, new_id=self._core.ids.new
        )
        for item in fired:
            if item.run is None:
                logger.warning(
                    "schedule %s: no worker has published its workflow; nothing started",
                    item.schedule_id,
                    extra={"action": "schedule_skipped"},
                )
            elif item.created:
                self._core.changed(item.run)
        return len(fired)
