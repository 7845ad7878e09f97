"""Several desk processes on one PostgreSQL database: each tells the others that the queue changed.

Every desk process consumes every Rasa event (its own RabbitMQ queue), so what the events change
(a new request, a withdrawal, a preview line) each one sees by itself. What agents and the sweeper
change (claim, hand-back, transfer, takeover, timeout, return to the queue) happens in one process
only: after publishing its queue to its own browsers, that process sends a PostgreSQL
`NOTIFY agent_desk_queue`; the others reload their open handoffs from the database and publish the
queue to their browsers. The agents' broadcasts (a transfer notice, a presence change: `Hub`'s
SHARED_KINDS) travel the same way, their data in the notification (at most 8000 bytes). A lost
connection is re-established and followed by one reload (a
notification sent meanwhile is not replayed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "agent_desk_queue"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more


class Peers:
    def __init__(self, database_url: str, engine: AsyncEngine, instance: str | None = None) -> None:
        self.engine = engine
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.instance = instance or secrets.token_hex(6)  # our own notifications are ignored
        self.changed = asyncio.Event()
        self.connected = asyncio.Event()
        self.reloads = 0
        self.on_broadcast: Callable[[str, Any], None] | None = None  # Hub.publish(kind, data, forwarded)
        self._sending: set[asyncio.Task[None]] = set()

    @classmethod
    def for_database(cls, database_url: str, engine: AsyncEngine) -> Peers | None:
        """Only PostgreSQL is shared by several processes (SQLite: one desk process)."""
        return cls(database_url, engine) if database_url.startswith("postgresql") else None

    async def _send(self, message: dict[str, Any]) -> None:
        payload = json.dumps({"from": self.instance, **message}, ensure_ascii=False)
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("a %s broadcast is too large to pass on to the other desks", message.get("kind"))
            return
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})
        except Exception:  # the other desks catch up at their next sweep (load_open) or reconnect
            log.warning("could not notify the other desk processes", exc_info=True)

    async def notify(self) -> None:
        """The queue changed (in the database)."""
        await self._send({"kind": "queue"})

    def forward(self, kind: str, data: Any) -> None:
        """Hub.forward: a broadcast of ours, for the browsers of the other desk processes."""
        task = asyncio.get_running_loop().create_task(self._send({"kind": kind, "data": data}))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if not isinstance(message, dict) or message.get("from") == self.instance:
            return
        if message.get("kind") == "queue":
            self.changed.set()
        elif isinstance(message.get("kind"), str) and self.on_broadcast is not None:
            self.on_broadcast(message["kind"], message.get("data"))

    async def run(self, on_change: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
        import asyncpg

        delay = 1.0
        while not stop.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                await conn.add_listener(CHANNEL, self._heard)
                self.connected.set()
                delay = 1.0
                self.changed.set()  # catch up with what changed while we were not listening
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), 5)
                    if self.changed.is_set() and not stop.is_set():
                        self.changed.clear()
                        self.reloads += 1
                        try:
                            await on_change()
                        except Exception:
                            log.exception("reloading the queue after another desk's change failed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("listening to the other desk processes failed (%s); retrying", exc)
            finally:
                self.connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 30)
