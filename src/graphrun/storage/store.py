"""LangGraph's long-term memory store on the engine's database (``store_items``).

Nodes that ask for a store (a ``store`` parameter, ``runtime.store``, ``get_store()``) get
a `GraphrunStore` scoped to their app: the same namespaces in two apps are two items.
From outside (``engine.store``) the first namespace label names the app, so one view reads
and writes every app's items. It is LangGraph's `BaseStore`: ``get``, ``put``, ``delete``,
``search`` (namespace prefix, filter, limit, offset), ``list_namespaces`` and batches, with
TTLs refreshed on read. As in LangGraph's own stores, the reads of a batch see the store as
it was before the batch's writes, values come back as they were put (bytes, NaN and NUL
strings are stored marked, see `graphrun.state_json`), and ``query`` is ignored: no vector index is configured
(pgvector is not installed on the machines graphrun is tested on).

Filters compare as LangGraph's stores do: a value equal to the filter's (nested objects
and lists compared by their members), or the operators ``$eq``, ``$ne``, ``$gt``,
``$gte``, ``$lt``, ``$lte``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from sqlalchemy import and_, delete, func, or_, select, update

from graphrun import errors
from graphrun.state_json import from_state_json, state_json

from .loop_bridge import LoopBridge
from .schema import store_items

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql import ColumnElement

    from .database import Database

__all__ = ("GraphrunStore", "sweep_expired")

SEPARATOR = "."
SEARCH_PAGE = 500  # rows read at a time while a filter picks the matches


class GraphrunStore(BaseStore):
    """LangGraph's `BaseStore` on graphrun's database, for one app (or all, from outside).

    Args:
        db: The engine's open database.
        app: The app whose items this store holds; None for the outside view, where a
            namespace's first label is the app.
    """

    supports_ttl = True

    def __init__(self, db: Database, *, app: str | None = None) -> None:
        self.db = db
        self.app = app
        self.ttl_config = TTLConfig(refresh_on_read=True)
        self._on_loop = LoopBridge("store", "aget, aput, asearch...").run

    def for_app(self, app: str) -> GraphrunStore:
        """The store of one app (what its nodes see)."""
        return GraphrunStore(self.db, app=app)

    # -- LangGraph's interface -----------------------------------------------------------

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in one transaction; reads see the store before its writes."""
        listed = list(ops)
        for op in listed:
            self._check(op)

        def job(conn: Connection) -> list[Result]:
            results: list[Result] = [self._read(conn, op) for op in listed]
            puts = {(op.namespace, op.key): op for op in listed if isinstance(op, PutOp)}
            for _, op in sorted(puts.items()):  # in key order: concurrent batches never deadlock
                self._write(conn, op)
            return results

        return await self.db.write(job)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """`abatch`, from a thread other than the engine's loop (a sync node's)."""
        return self._on_loop(self.abatch(ops))

    # -- where an item lives -------------------------------------------------------------

    def _place(self, namespace: tuple[str, ...]) -> tuple[str, str]:
        """``(app, prefix)`` of a namespace."""
        if self.app is not None:
            return self.app, SEPARATOR.join(namespace)
        if len(namespace) < 2:
            raise InvalidNamespaceError(
                f"From outside an app, a namespace starts with the app's name and holds at "
                f"least one label more: got {namespace}."
            )
        return namespace[0], SEPARATOR.join(namespace[1:])

    def _namespace(self, app: str, prefix: str) -> tuple[str, ...]:
        labels = tuple(prefix.split(SEPARATOR)) if prefix else ()
        return labels if self.app is not None else (app, *labels)

    def _scope(self, namespace_prefix: tuple[str, ...]) -> ColumnElement[bool]:
        """Rows whose namespace starts with ``namespace_prefix`` (and are not expired)."""
        c = store_items.c
        live = or_(c.expires_at.is_(None), c.expires_at > self.db.now())
        if self.app is not None:
            app, labels = self.app, namespace_prefix
        elif not namespace_prefix:
            return live
        else:
            app, labels = namespace_prefix[0], namespace_prefix[1:]
        if not labels:
            return and_(c.app == app, live)
        prefix = SEPARATOR.join(labels)
        below = func.substr(c.prefix, 1, len(prefix) + 1) == prefix + SEPARATOR
        return and_(c.app == app, or_(c.prefix == prefix, below), live)

    def _check(self, op: Op) -> None:
        if isinstance(op, GetOp | PutOp):
            self._place(op.namespace)
            if isinstance(op, PutOp) and op.value is not None and not isinstance(op.value, dict):
                raise errors.ValidationFailed(
                    "store value", [{"pointer": "", "message": "must be an object"}]
                )
        elif not isinstance(op, SearchOp | ListNamespacesOp):
            raise ValueError(f"Unknown operation type: {type(op).__name__}")

    # -- reads ---------------------------------------------------------------------------

    def _read(self, conn: Connection, op: Op) -> Result:
        if isinstance(op, GetOp):
            return self._get(conn, op)
        if isinstance(op, SearchOp):
            return self._search(conn, op)
        if isinstance(op, ListNamespacesOp):
            return self._list_namespaces(conn, op)
        return None

    def _refreshes(self, refresh_ttl: bool | None) -> bool:
        if refresh_ttl is None:
            return bool((self.ttl_config or {}).get("refresh_on_read", True))
        return refresh_ttl

    def _get(self, conn: Connection, op: GetOp) -> Item | None:
        app, prefix = self._place(op.namespace)
        c = store_items.c
        here = and_(c.app == app, c.prefix == prefix, c.key == op.key)
        live = or_(c.expires_at.is_(None), c.expires_at > self.db.now())
        row = conn.execute(select(store_items).where(here, live)).mappings().first()
        if row is None:
            return None
        if row["ttl_minutes"] is not None and self._refreshes(op.refresh_ttl):
            self._refresh(conn, [(app, prefix, op.key)])
        item: Item = self._item(row, Item)
        return item

    def _search(self, conn: Connection, op: SearchOp) -> list[SearchItem]:
        c = store_items.c
        query = (
            select(store_items)
            .where(self._scope(op.namespace_prefix))
            .order_by(c.updated_at.desc(), c.app, c.prefix, c.key)
        )
        if not op.filter:
            rows = list(conn.execute(query.offset(op.offset).limit(op.limit)).mappings())
        else:
            rows = self._filtered(conn, query, op)
        refresh = [(r["app"], r["prefix"], r["key"]) for r in rows if r["ttl_minutes"] is not None]
        if refresh and self._refreshes(op.refresh_ttl):
            self._refresh(conn, refresh)
        return [self._item(row, SearchItem) for row in rows]

    def _filtered(self, conn: Connection, query: Any, op: SearchOp) -> list[Any]:
        """The rows a filter keeps, ``offset`` and ``limit`` applied, read page by page."""
        wanted, start = op.offset + op.limit, 0
        kept: list[Any] = []
        assert op.filter is not None
        while len(kept) < wanted:
            page = list(conn.execute(query.offset(start).limit(SEARCH_PAGE)).mappings())
            kept += [r for r in page if _matches(r["value"], op.filter)]
            if len(page) < SEARCH_PAGE:
                break
            start += SEARCH_PAGE
        return kept[op.offset : wanted]

    def _list_namespaces(self, conn: Connection, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        c = store_items.c
        rows = conn.execute(
            select(c.app, c.prefix).distinct().where(self._scope(_fixed_prefix(op)))
        ).all()
        found = {self._namespace(app, prefix) for app, prefix in rows}
        matching = [
            ns for ns in found if all(_does_match(m, ns) for m in op.match_conditions or ())
        ]
        if op.max_depth is not None:
            matching = list({ns[: op.max_depth] for ns in matching})
        return sorted(matching)[op.offset : op.offset + op.limit]

    def _item(self, row: Any, kind: type[Item]) -> Any:
        return kind(
            namespace=self._namespace(row["app"], row["prefix"]),
            key=row["key"],
            value=from_state_json(row["value"]),
            created_at=datetime.fromtimestamp(row["created_at"], UTC),
            updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        )

    def _refresh(self, conn: Connection, keys: list[tuple[str, str, str]]) -> None:
        c = store_items.c
        for app, prefix, key in keys:
            conn.execute(
                update(store_items)
                .where(c.app == app, c.prefix == prefix, c.key == key)
                .values(expires_at=self.db.now() + c.ttl_minutes * 60)
            )

    # -- writes --------------------------------------------------------------------------

    def _write(self, conn: Connection, op: PutOp) -> None:
        app, prefix = self._place(op.namespace)
        c = store_items.c
        if op.value is None:
            conn.execute(
                delete(store_items).where(c.app == app, c.prefix == prefix, c.key == op.key)
            )
            return
        now = self.db.now()
        ttl = op.ttl if isinstance(op.ttl, int | float) and math.isfinite(op.ttl) else None
        values: dict[str, Any] = {
            "value": state_json(op.value),
            "updated_at": now,
            "expires_at": None if ttl is None else now + ttl * 60,
            "ttl_minutes": ttl,
        }
        stmt = self.db.insert(store_items).values(
            app=app, prefix=prefix, key=op.key, created_at=now, **values
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.app, c.prefix, c.key],
                set_={name: getattr(stmt.excluded, name) for name in values},
            )
        )


async def sweep_expired(db: Database) -> int:
    """Delete the store items whose TTL ran out; how many went."""

    def job(conn: Connection) -> int:
        gone = conn.execute(delete(store_items).where(store_items.c.expires_at <= db.now()))
        return int(gone.rowcount or 0)

    return await db.write(job)


def _fixed_prefix(op: ListNamespacesOp) -> tuple[str, ...]:
    """The leading labels every listed namespace must have (a prefix up to a wildcard)."""
    for condition in op.match_conditions or ():
        if condition.match_type == "prefix":
            fixed = []
            for label in condition.path:
                if label == "*":
                    break
                fixed.append(label)
            return tuple(fixed)
    return ()


def _does_match(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(wanted in ("*", label) for label, wanted in pairs)


def _matches(value: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(_compare(value.get(k), v) for k, v in wanted.items())


def _compare(value: Any, wanted: Any) -> bool:
    """Whether a stored value meets a filter's value, as LangGraph's stores compare."""
    if isinstance(wanted, dict):
        if any(k.startswith("$") for k in wanted):
            return all(_operator(value, op, operand) for op, operand in wanted.items())
        return isinstance(value, dict) and all(_compare(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_compare(v, w) for v, w in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _operator(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(value == operand)
    if op == "$ne":
        return bool(value != operand)
    comparisons = {
        "$gt": float.__gt__,
        "$gte": float.__ge__,
        "$lt": float.__lt__,
        "$lte": float.__le__,
    }
    if op not in comparisons:
        raise ValueError(f"Unsupported operator: {op}")
    try:
        return bool(comparisons[op](float(value), float(operand)))
    except (TypeError, ValueError):
        return False
