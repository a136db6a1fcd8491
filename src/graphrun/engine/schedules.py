"""Schedule specs: validating cron expressions, intervals and time zones; next due times.

Cron expressions have five fields (minute to day of week, as cron has them) and are
evaluated in the schedule's IANA time zone, daylight saving included (cronsim). Intervals
are whole seconds, at least one. Anything else is refused with the reason.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from graphrun import errors
from graphrun.storage.records import ScheduleRecord

__all__ = (
    "SCHEDULE_ID_RE",
    "check_spec",
    "first_fire",
    "next_after",
    "zone",
)

#: A schedule id: lower-case letters, digits, ``_``, ``.``, ``-``; at most 64 characters.
SCHEDULE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MIN_INTERVAL_S = 1
MAX_INTERVAL_S = 366 * 24 * 3600


def _problem(pointer: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed("schedule", [{"pointer": pointer, "message": message}])


def zone(name: Any) -> ZoneInfo:
    """The IANA time zone called ``name``.

    Raises:
        ValidationFailed: No such zone (or not a zone name at all).
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*", name):
        raise _problem("/timezone", f"{name!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _problem("/timezone", f"unknown time zone {name!r}") from exc


def check_spec(schedule_id: Any, cron: Any, every: Any, timezone: Any) -> float | None:
    """Validate a schedule's id, cron or interval and time zone; return the interval.

    Raises:
        ValidationFailed: What is wrong, with its JSON pointer.
    """
    if not isinstance(schedule_id, str) or not SCHEDULE_ID_RE.fullmatch(schedule_id):
        raise _problem("/id", f"must match {SCHEDULE_ID_RE.pattern}")
    tz = zone(timezone)
    if (cron is None) == (every is None):
        raise _problem("", "give either cron or every (seconds), not both")
    if cron is not None:
        if not isinstance(cron, str) or len(cron.split()) != 5:
            raise _problem(
                "/cron",
                "a cron expression has five fields: minute hour day-of-month month day-of-week",
            )
        try:
            next(iter(CronSim(cron, datetime.now(tz))))
        except (CronSimError, StopIteration) as exc:
            reason = str(exc) or "it never fires"
            raise _problem("/cron", f"invalid cron expression {cron!r}: {reason}") from exc
        return None
    if isinstance(every, bool) or not isinstance(every, int | float) or not math.isfinite(every):
        raise _problem("/every", "must be a number of seconds")
    if not MIN_INTERVAL_S <= every <= MAX_INTERVAL_S or every != int(every):
        raise _problem(
            "/every", f"must be whole seconds between {MIN_INTERVAL_S} and {MAX_INTERVAL_S}"
        )
    return float(every)


def next_after(schedule: ScheduleRecord, now: float) -> float:
    """The schedule's first due time strictly after ``now`` (missed ones are skipped)."""
    if schedule.interval_s is not None:
        last = schedule.next_fire_at.timestamp()
        if last > now:
            return last
        missed = math.floor((now - last) / schedule.interval_s) + 1
        return last + missed * schedule.interval_s
    tz = zone(schedule.timezone)
    start = datetime.fromtimestamp(now, tz)
    return next(iter(CronSim(schedule.cron or "", start))).timestamp()


def first_fire(cron: str | None, interval_s: float | None, timezone: str, now: float) -> float:
    """When a new schedule first fires: its first cron time, or one interval from now."""
    if interval_s is not None:
        return now + interval_s
    start = datetime.fromtimestamp(now, zone(timezone))
    return next(iter(CronSim(cron or "", start))).timestamp()
