"""The SQLite lock store (deploy/sqlite_lock_store.py) that lets several Rasa workers share locks."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from deploy.sqlite_lock_store import SQLiteLockStore


def test_created_from_endpoints_like_rasa_does(tmp_path: Path) -> None:
    db = tmp_path / "locks" / "rasa_locks.db"
    store = LockStore.create(EndpointConfig(type="deploy.sqlite_lock_store.SQLiteLockStore", db=str(db)))
    assert isinstance(store, SQLiteLockStore) and db.exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_second_message_of_a_conversation_waits_for_the_first(tmp_path: Path) -> None:
    store = SQLiteLockStore(db=str(tmp_path / "locks.db"))
    order: list[str] = []

    async def handle(name: str, work: float) -> None:
        async with store.lock("conv-1", wait_time_in_seconds=0.01):
            order.append(f"{name} start")
            await asyncio.sleep(work)
            order.append(f"{name} end")

    first = asyncio.create_task(handle("first", 0.2))
    await asyncio.sleep(0.02)
    await asyncio.gather(first, handle("second", 0.0))
    assert order == ["first start", "first end", "second start", "second end"]
    assert store.get_lock("conv-1") is None, "the lock is deleted when nobody waits"


async def test_other_conversations_are_not_blocked(tmp_path: Path) -> None:
    store = SQLiteLockStore(db=str(tmp_path / "locks.db"))
    async with store.lock("conv-a"):
        async with store.lock("conv-b", wait_time_in_seconds=0.01):
            assert store.get_lock("conv-b") is not None


def _draw_tickets(db: str, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SQLiteLockStore(db=db)
    out.put([store.issue_ticket("shared", 60) for _ in range(n)])


@pytest.mark.slow
def test_workers_never_draw_the_same_ticket(tmp_path: Path) -> None:
    # Rasa's Redis store reads, changes and writes the lock in three steps; two workers can draw
    # the same ticket. Here each draw is one transaction.
    db = str(tmp_path / "locks.db")
    SQLiteLockStore(db=db)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_draw_tickets, args=(db, 100, out)) for _ in range(4)]
    for p in procs:
        p.start()
    tickets = [t for _ in procs for t in out.get(timeout=60)]
    for p in procs:
        p.join(10)
    assert sorted(tickets) == list(range(400))
    lock = SQLiteLockStore(db=db).get_lock("shared")
    assert lock is not None and len(lock.tickets) == 400
