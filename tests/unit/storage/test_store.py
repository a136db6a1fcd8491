"""The store's contract: LangGraph's `BaseStore`, as LangGraph's `InMemoryStore` behaves.

Each scenario runs against graphrun's store (on SQLite and PostgreSQL) and against
LangGraph's in-memory store, and compares what they answer; search order is graphrun's own
(newest first, like LangGraph's PostgreSQL store), so results are compared as sets there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph.store.base import BaseStore, GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from graphrun import SyncCallOnLoop
from graphrun.storage import Database
from graphrun.storage.store import GraphrunStore, sweep_expired

ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("users", "ada"), "prefs", {"theme": "dark", "size": 12, "tags": ["a", "b"]}),
    (("users", "ada"), "profile", {"name": "Ada", "size": 1, "address": {"city": "London"}}),
    (("users", "bob"), "prefs", {"theme": "light", "size": 10}),
    (("users", "bob", "drafts"), "d1", {"text": "hi", "size": 3}),
    (("docs",), "readme", {"text": "welcome", "size": 100}),
    (("users.x",), "dotted", {"never": True}),  # refused: a label with a period
]


async def _filled(store: BaseStore) -> None:
    for namespace, key, value in ITEMS[:-1]:
        await store.aput(namespace, key, value)


def _seen(items: list[Any]) -> set[tuple[tuple[str, ...], str, str]]:
    return {(tuple(i.namespace), i.key, repr(sorted(i.value.items()))) for i in items}


@pytest.fixture
async def stores(db: Database) -> tuple[GraphrunStore, InMemoryStore]:
    ours, reference = GraphrunStore(db, app="app"), InMemoryStore()
    await _filled(ours)
    await _filled(reference)
    return ours, reference


async def test_get_put_delete_as_langgraph(stores: tuple[GraphrunStore, InMemoryStore]) -> None:
    ours, reference = stores
    for store in stores:
        await store.aput(("users", "ada"), "prefs", {"theme": "solar"})
        await store.adelete(("users", "bob"), "prefs")
    for namespace, key, _ in ITEMS[:-1]:
        mine, theirs = await ours.aget(namespace, key), await reference.aget(namespace, key)
        assert (mine and (mine.namespace, mine.key, mine.value)) == (
            theirs and (theirs.namespace, theirs.key, theirs.value)
        )
    item = await ours.aget(("users", "ada"), "prefs")
    assert item is not None
    assert item.created_at <= item.updated_at
    assert await ours.aget(("users", "nobody"), "prefs") is None


@pytest.mark.parametrize(
    ("prefix", "filter", "limit", "offset"),
    [
        ((), None, 10, 0),
        (("users",), None, 10, 0),
        (("users", "ada"), None, 10, 0),
        (("users", "bo"), None, 10, 0),  # a label's prefix is not a namespace prefix
        (("users",), {"theme": "dark"}, 10, 0),
        ((), {"size": {"$gt": 10}}, 10, 0),
        ((), {"size": {"$gte": 10, "$lt": 100}}, 10, 0),
        ((), {"theme": {"$ne": "dark"}}, 10, 0),
        ((), {"address": {"city": "London"}}, 10, 0),
        ((), {"tags": ["a", "b"]}, 10, 0),
        ((), {"size": {"$lte": 12}}, 2, 1),
        ((), None, 2, 3),
        (("nothing",), None, 10, 0),
    ],
)
async def test_search_as_langgraph(
    stores: tuple[GraphrunStore, InMemoryStore],
    prefix: tuple[str, ...],
    filter: dict[str, Any] | None,
    limit: int,
    offset: int,
) -> None:
    ours, reference = stores
    mine = await ours.asearch(prefix, filter=filter, limit=limit, offset=offset)
    theirs = await reference.asearch(prefix, filter=filter, limit=limit, offset=offset)
    assert len(mine) == len(theirs)
    if limit >= 10:  # pages of an order both keep differently are compared by size only
        assert _seen(mine) == _seen(theirs)


async def test_search_pages_do_not_overlap_and_put_newest_first(
    stores: tuple[GraphrunStore, InMemoryStore],
) -> None:
    ours, _ = stores
    pages = [await ours.asearch((), limit=2, offset=o) for o in (0, 2, 4)]
    keys = [(i.namespace, i.key) for page in pages for i in page]
    assert len(keys) == len(set(keys)) == 5
    await ours.aput(("docs",), "readme", {"text": "changed"})
    assert [(i.namespace, i.key) for i in await ours.asearch((), limit=1)] == [
        (("docs",), "readme")
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prefix": ("users",)},
        {"prefix": ("users", "*")},
        {"suffix": ("prefs",)},
        {"suffix": ("drafts",)},
        {"prefix": ("users",), "max_depth": 2},
        {"max_depth": 1},
        {"limit": 2, "offset": 1},
        {"prefix": ("nothing",)},
    ],
)
async def test_list_namespaces_as_langgraph(
    stores: tuple[GraphrunStore, InMemoryStore], kwargs: dict[str, Any]
) -> None:
    ours, reference = stores
    assert await ours.alist_namespaces(**kwargs) == await reference.alist_namespaces(**kwargs)


async def test_a_batchs_reads_see_the_store_before_its_writes(
    stores: tuple[GraphrunStore, InMemoryStore],
) -> None:
    ops = [
        PutOp(("users", "ada"), "prefs", {"theme": "new"}),
        GetOp(("users", "ada"), "prefs"),
        SearchOp(("users", "ada"), filter={"theme": "dark"}),
        PutOp(("users", "ada"), "prefs", {"theme": "last"}),
    ]
    mine, theirs = [await store.abatch(ops) for store in stores]
    assert mine[1].value == theirs[1].value == {"theme": "dark", "size": 12, "tags": ["a", "b"]}
    assert len(mine[2]) == len(theirs[2]) == 1
    after = await stores[0].aget(("users", "ada"), "prefs")
    assert after is not None
    assert after.value == {"theme": "last"}


async def test_bad_namespaces_are_refused_as_langgraph(
    stores: tuple[GraphrunStore, InMemoryStore],
) -> None:
    for store in stores:
        for namespace in [(), ("users.x",), ("langgraph", "x"), ("a", "")]:
            with pytest.raises(InvalidNamespaceError):
                await store.aput(namespace, "k", {"v": 1})


async def test_items_expire_and_reads_refresh_their_ttl(db: Database) -> None:
    store = GraphrunStore(db, app="app")
    await store.aput(("cache",), "gone", {"v": 1}, ttl=-1)  # already expired
    await store.aput(("cache",), "kept", {"v": 2}, ttl=60)
    await store.aput(("cache",), "forever", {"v": 3})
    assert await store.aget(("cache",), "gone") is None
    assert {i.key for i in await store.asearch(("cache",))} == {"kept", "forever"}
    assert await store.alist_namespaces() == [("cache",)]
    before = await _expiry(db, "kept")
    await store.aget(("cache",), "kept", refresh_ttl=False)
    assert await _expiry(db, "kept") == before
    await store.aget(("cache",), "kept")
    assert await _expiry(db, "kept") > before
    assert await sweep_expired(db) == 1


async def _expiry(db: Database, key: str) -> float:
    from sqlalchemy import select

    from graphrun.storage.schema import store_items

    row = await db.read(
        lambda conn: conn.execute(
            select(store_items.c.expires_at).where(store_items.c.key == key)
        ).scalar_one()
    )
    return float(row)


async def test_apps_do_not_see_each_others_items_and_the_outside_view_sees_all(
    db: Database,
) -> None:
    outside = GraphrunStore(db)
    orders, billing = outside.for_app("orders"), outside.for_app("billing")
    await orders.aput(("users", "ada"), "prefs", {"from": "orders"})
    await billing.aput(("users", "ada"), "prefs", {"from": "billing"})
    item = await orders.aget(("users", "ada"), "prefs")
    assert item is not None
    assert item.value == {"from": "orders"}
    assert item.namespace == ("users", "ada")
    seen = await outside.aget(("billing", "users", "ada"), "prefs")
    assert seen is not None
    assert seen.value == {"from": "billing"}
    assert seen.namespace == ("billing", "users", "ada")
    await outside.aput(("orders", "users", "bob"), "prefs", {"from": "outside"})
    assert {i.key for i in await orders.asearch(("users",))} == {"prefs"}
    assert len(await orders.asearch(("users",))) == 2
    assert await outside.alist_namespaces(max_depth=1) == [("billing",), ("orders",)]
    with pytest.raises(InvalidNamespaceError):
        await outside.aput(("orders",), "k", {"v": 1})  # the app, and no namespace


async def test_sync_methods_work_from_a_thread_and_refuse_on_the_loop(db: Database) -> None:
    store = GraphrunStore(db, app="app")
    await asyncio.to_thread(store.put, ("t",), "k", {"v": 1})
    item = await asyncio.to_thread(store.get, ("t",), "k")
    assert item is not None
    assert item.value == {"v": 1}
    with pytest.raises(SyncCallOnLoop):
        store.get(("t",), "k")


async def test_values_come_back_as_they_were_put(db: Database) -> None:
    store, reference = GraphrunStore(db, app="app"), InMemoryStore()
    value = {"raw": b"\xff\x00", "inf": float("inf"), "nul": "a\x00b", "nested": [{"b": b"x"}]}
    for each in (store, reference):
        await each.aput(("t",), "odd", value)
    mine, theirs = await store.aget(("t",), "odd"), await reference.aget(("t",), "odd")
    assert mine is not None
    assert theirs is not None
    assert mine.value == theirs.value == value
