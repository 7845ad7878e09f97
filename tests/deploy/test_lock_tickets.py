"""deploy/lock_tickets.py on both lock stores we run (the SQLite file of `make run`, the local Redis of
the scaled topology, as CI starts it): a waiting ticket that expires keeps its place."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.lock_store import LockStore
from rasa.utils.endpoints import EndpointConfig

from deploy.redis_lock_store import RedisLockStore
from deploy.sqlite_lock_store import SQLiteLockStore


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LockStore]:
    if request.param == "sqlite":
        yield SQLiteLockStore(db=str(tmp_path / "locks.db"))
        return
    # Built from the endpoints as Rasa builds deploy/endpoints.scaled.yml's store.
    config = EndpointConfig(
        url="127.0.0.1",
        type="deploy.redis_lock_store.RedisLockStore",
        port=6379,
        db=1,
        key_prefix=f"test{uuid.uuid4().hex[:8]}",
        socket_timeout=5,
    )
    redis_store = LockStore.create(config)
    assert isinstance(redis_store, RedisLockStore)
    yield redis_store
    redis_store.red.close()


async def test_a_ticket_that_expires_while_waiting_keeps_its_place(store: LockStore) -> None:
    """A worker died holding the lock: its ticket expires, and so does the waiting message's own
    (same lifetime, issued a moment later). Rasa's loop then waited for ever; here the waiting
    message is served, before a message that arrived after it."""
    store.issue_ticket("c", 0.3)  # the dead worker's: never finished
    order: list[str] = []

    async def message(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with store.lock("c", lock_lifetime=0.3, wait_time_in_seconds=0.5):
            order.append(name)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(message("waiting", 0), message("later", 0.2)), 5)
    assert order == ["waiting", "later"]
    assert store.get_lock("c") is None  # cleaned up after both


async def test_a_busy_lock_waits_for_its_holder(store: LockStore) -> None:
    second = store.lock("d", lock_lifetime=5, wait_time_in_seconds=0.05)
    async with store.lock("d", lock_lifetime=5, wait_time_in_seconds=0.05):
        waiting = asyncio.ensure_future(second.__aenter__())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the first holder still has it
    await asyncio.wait_for(waiting, 2)
    await second.__aexit__(None, None, None)
    assert store.get_lock("d") is None
