"""Driver errors into graphrun's `StorageError` tree: the one place that reads them.

Both backends, the PostgreSQL batcher and raw statements on driver cursors raise through
here, so nothing above storage ever sees ``sqlite3``, ``psycopg`` or ``sqlalchemy.exc``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import psycopg
from sqlalchemy.exc import DBAPIError, OperationalError

from graphrun import errors

__all__ = ("DRIVER_ERRORS", "PG_RETRY_STATES", "map_errors", "sqlstate", "storage_error")

#: Driver errors: SQLAlchemy's wrapper, and the drivers' own (raw statements use the cursor).
DRIVER_ERRORS = (DBAPIError, sqlite3.Error, psycopg.Error)
#: PostgreSQL SQLSTATEs of a transaction rolled back whole that may simply run again:
#: deadlock_detected, serialization_failure.
PG_RETRY_STATES = frozenset({"40P01", "40001"})
#: PostgreSQL SQLSTATEs that mean "try again soon": deadlock, serialization failure, lock
#: not available, statement cancelled by its timeout.
PG_BUSY_STATES = frozenset({"40P01", "40001", "55P03", "57014"})
#: ... and those that mean the server is gone or refuses: admin shutdown, crash shutdown,
#: cannot connect now, too many connections (plus class 08, connection exceptions).
PG_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: Connection failures psycopg reports without a SQLSTATE.
PG_CONNECTION_SIGNS = (
    "connection failed",
    "server closed the connection",
    "connection is closed",
    "connection is lost",
    "consuming input failed",
    "sending query failed",
    "could not send data",
    "connection socket closed",
)


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate driver errors into the `StorageError` tree; never leak SQLAlchemy upward."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise storage_error(exc) from exc


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a driver error, if it has one."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def storage_error(exc: DBAPIError | sqlite3.Error | psycopg.Error) -> errors.StorageError:
    """The `StorageError` a driver error means: busy, full, unavailable, or plain."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(orig if orig is not None else exc).lower()
    if isinstance(orig, psycopg.Error) or isinstance(exc, psycopg.Error):
        return _postgres_error(exc, orig, text)
    if "database is locked" in text or "database table is locked" in text:
        return errors.StorageBusy()
    if "database or disk is full" in text or "no space left" in text:
        return errors.StorageFull()
    if "disk i/o error" in text:
        return errors.StorageIOError()
    if "unable to open database" in text or ("connection" in text and "refused" in text):
        return errors.DatabaseUnavailable(f"Database unavailable: {text}")
    if isinstance(exc, OperationalError | sqlite3.OperationalError):
        return errors.StorageError(f"Database error: {text}")
    return errors.StorageError(f"Database error ({type(orig).__name__}): {text}")


def _postgres_error(
    exc: BaseException, orig: BaseException | None, text: str
) -> errors.StorageError:
    state = sqlstate(exc)
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if state in PG_BUSY_STATES:
        return errors.StorageBusy(f"The database is busy: {text}")
    if (
        invalidated
        or state in PG_UNAVAILABLE_STATES
        or (state or "").startswith("08")
        or (state is None and isinstance(orig, psycopg.OperationalError))
        or any(sign in text for sign in PG_CONNECTION_SIGNS)
    ):
        return errors.DatabaseUnavailable(f"Database unavailable: {text}")
    return errors.StorageError(f"Database error ({type(orig).__name__}): {text}")
