"""Rasa lock store in a SQLite file: several Rasa workers on one machine without Redis.

Why: Rasa refuses `SANIC_WORKERS > 1` with its in-memory lock store (each worker process would
have its own locks, so two messages of one conversation could be handled at once, out of order).
Redis is the answer for several machines (deploy/endpoints.scaled.yml); on one machine a SQLite
file shared by the workers does the same job with no server to run.

The ticket semantics are Rasa's own (`TicketLock`: a message takes a ticket and waits until it is
served). Unlike Rasa's Redis store, taking a ticket and finishing one are single transactions
(`BEGIN IMMEDIATE`), so two workers can never draw the same ticket. A ticket that expires while it
waits its turn keeps its place (deploy/lock_tickets.py: after a worker died holding a
conversation's lock, Rasa's loop left that conversation's next message waiting for ever).

Configure in endpoints:
    lock_store:
      type: deploy.sqlite_lock_store.SQLiteLockStore
      db: var/rasa_locks.db
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError
from rasa.utils.endpoints import EndpointConfig

from common.shared_sqlite import SharedSQLite
from deploy.lock_tickets import KeepsPlaceWhenExpired

logger = logging.getLogger(__name__)


class SQLiteLockStore(KeepsPlaceWhenExpired):
    def __init__(self, endpoint_config: EndpointConfig | None = None, db: str | None = None) -> None:
        kwargs: dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        path = db or kwargs.get("db") or os.environ.get("RASA_LOCKS_DB") or "rasa_locks.db"
        self.path = Path(str(path))
        # Locks live seconds; after an OS crash they expire by their lifetime anyway.
        self._db = SharedSQLite(self.path, synchronous="OFF")
        with self._db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, data TEXT NOT NULL)"
            )

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        row = (
            self._db.connection()
            .execute("SELECT data FROM locks WHERE conversation_id = ?", (conversation_id,))
            .fetchone()
        )
        if row is None:
            return None
        return TicketLock.from_dict(json.loads(row[0]))

    def delete_lock(self, conversation_id: str) -> None:
        cur = self._db.connection().execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))
        self._log_deletion(conversation_id, cur.rowcount > 0)

    def save_lock(self, lock: TicketLock) -> None:
        self._db.connection().execute(
            "INSERT INTO locks (conversation_id, data) VALUES (?, ?) "
            "ON CONFLICT(conversation_id) DO UPDATE SET data = excluded.data",
            (lock.conversation_id, lock.dumps()),
        )

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            with self._db.transaction():
                lock = self.get_or_create_lock(conversation_id)
                ticket = lock.issue_ticket(lock_lifetime)
                self.save_lock(lock)
            return ticket
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        with self._db.transaction():
            super().update_lock(conversation_id)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        with self._db.transaction():
            lock = self.get_lock(conversation_id)
            if lock is None:
                return
            lock.remove_ticket_for(ticket_number)
            if lock.is_someone_waiting():
                self.save_lock(lock)
            else:
                self.delete_lock(conversation_id)

    def place_transaction(self) -> AbstractContextManager[object]:
        return self._db.transaction()
