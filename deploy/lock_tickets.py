"""A conversation lock's ticket that expires while it waits its turn keeps its place.

Rasa 3.6's `LockStore._acquire_lock` waits until its ticket is the lowest one left, dropping expired
tickets as it goes. When a Rasa process dies while it holds a conversation's lock, its ticket stays
until it expires; the next message of that conversation took a ticket a moment later with the same
lifetime, so both usually expire between two polls, the list empties, and Rasa's "now serving" is 0
for ever: the message waited until its client gave up (90 s in tests/faults/test_worker_faults.py;
the channel's retry then failed the same way). Here an expired own ticket is put back in its place
with a new lifetime, and a lock deleted meanwhile is created again, so the message is served once
the dead ticket has expired, before messages that came after it.

`KeepsPlaceWhenExpired` goes before the store class: the SQLite store (deploy/sqlite_lock_store.py)
and the Redis one (deploy/redis_lock_store.py). The usual turn reads the lock once, as Rasa's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from contextlib import AbstractContextManager

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockStore

from deploy.source_pins import pins

logger = logging.getLogger(__name__)

# What the override relies on, as written for Rasa 3.6.21 (checked at start-up by deploy/rasa_main.py
# and by tests/deploy/test_rasa_patches.py): `lock` calls `_acquire_lock`, which this replaces.
PINS = pins(
    (
        "rasa.core.lock_store:LockStore.lock",
        "8b9b716c031a34445100c32e7123859553831d2ac4747ae2b47a581f137ea371",
    ),
    (
        "rasa.core.lock_store:LockStore._acquire_lock",
        "ead2fff373291c24619f2a2b53453f64ed2975ed68f53dce0e56041061356f05",
    ),
    (
        "rasa.core.lock:TicketLock.now_serving",
        "a5229961d3271aa427ea1b240349e5e392fba2f03d8e33f5240a1bd61dcc86cd",
    ),
    (
        "rasa.core.lock_store:RedisLockStore.__init__",
        "829e898a8cddff8dc3f2ff6e260e944b7e1e3e4ec2d4ce8787785ce062ffc551",
    ),
)


class KeepsPlaceWhenExpired(LockStore):
    async def _acquire_lock(
        self, conversation_id: str, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        lock = self.get_lock(conversation_id)  # the usual turn: served at once, one read, no write
        if lock is not None and lock.now_serving == ticket:
            return lock
        while True:
            lock = self._keep_place(conversation_id, ticket)
            if lock.now_serving == ticket:
                return lock
            logger.debug("conversation lock busy; retrying in %s s", wait_time_in_seconds)
            await asyncio.sleep(wait_time_in_seconds)

    def place_transaction(self) -> AbstractContextManager[object]:
        """Where the store can, make `_keep_place` one transaction (Rasa's own update is not one)."""
        return contextlib.nullcontext()

    def _keep_place(self, conversation_id: str, ticket: int) -> TicketLock:
        """Drop expired tickets; put ours back in its place if it expired while waiting (or the lock
        was deleted meanwhile), with a new lifetime."""
        with self.place_transaction():
            lock = self.get_or_create_lock(conversation_id)
            lock.remove_expired_tickets()
            if all(t.number != ticket for t in lock.tickets):
                mine = Ticket(ticket, time.time() + LOCK_LIFETIME)
                lock.tickets = deque(sorted((*lock.tickets, mine), key=lambda t: t.number))
            self.save_lock(lock)
            return lock
