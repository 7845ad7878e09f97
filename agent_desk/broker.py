"""Follow Rasa's event broker: every tracker event of every conversation, in order, once.

Two sources behind one interface (`EventSource.run(sink)`):
- `SqlBrokerSource` tails an `events` table (id, sender_id, data) in a SQLite file: the one of Rasa's
  SQL tracker store (the default, `make run`) or of Rasa's SQL event broker, by its auto-increment
  id, remembering the last id handled in the desk's database;
- `RabbitBrokerSource` consumes a durable RabbitMQ queue bound to Rasa's fanout exchange (Rasa's
  `pika` broker), acknowledging each message only after it was handled. Several desk processes
  each consume their own queue (DESK_RABBITMQ_QUEUE), so each sees every event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db

log = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], Awaitable[None]]
MAX_EVENT_BYTES = 1_000_000


class EventSource(Protocol):
    name: str

    async def run(self, sink: Sink) -> None: ...

    def stop(self) -> None:
        """Finish the event being handled, then return from run() (a clean shutdown)."""


class CursorStore:
    """Position of a source, kept in the desk's database so a restart resumes where it stopped."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name[:64]

    async def load(self) -> int | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(
                sa.select(db.broker_cursor.c.position).where(db.broker_cursor.c.name == self.name)
            )

    async def save(self, position: int) -> None:
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                db.broker_cursor.update()
                .where(db.broker_cursor.c.name == self.name)
                .values(position=position)
            )
            if updated.rowcount == 0:
                await conn.execute(db.broker_cursor.insert().values(name=self.name, position=position))


async def deliver(sink: Sink, event: dict[str, Any], retries: int = 3) -> None:
    """Hand one event to the sink, retrying transient failures; a poison event is logged and skipped."""
    for attempt in range(1, retries + 1):
        try:
            await sink(event)
            return
        except Exception:
            log.exception(
                "handling event %s of %s failed (attempt %d)",
                event.get("event"),
                event.get("sender_id"),
                attempt,
            )
            await asyncio.sleep(0.2 * attempt)


def parse_event(raw: str | bytes, sender_id: str | None = None) -> dict[str, Any] | None:
    if len(raw) > MAX_EVENT_BYTES:
        log.warning("skipping an oversized broker event (%d bytes)", len(raw))
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        log.warning("skipping a broker message that is not JSON")
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    if sender_id and not event.get("sender_id"):
        event["sender_id"] = sender_id
    return event if isinstance(event.get("sender_id"), str) else None


class SqlBrokerSource:
    def __init__(self, path: Path, cursor: CursorStore, poll_interval: float = 0.5, batch: int = 500) -> None:
        self.path = path
        self.cursor = cursor
        self.poll_interval = poll_interval
        self.batch = batch
        self.name = f"sql:{path}"
        self.position: int | None = None
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        # Read-only connection: the desk never writes Rasa's file. Short-lived, so Rasa's writes are
        # never blocked by a long read transaction.
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    async def _rows(self, after: int) -> list[tuple[int, str | None, str]] | None:
        if not self.path.exists():
            return None
        try:
            return await asyncio.to_thread(
                self._query,
                "SELECT id, sender_id, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
                (after, self.batch),
            )
        except sqlite3.OperationalError as exc:  # table not created yet, database busy
            log.debug("event table not readable yet: %s", exc)
            return None

    async def _max_id(self) -> int | None:
        if not self.path.exists():
            return None
        try:
            rows = await asyncio.to_thread(self._query, "SELECT COALESCE(MAX(id), 0) FROM events")
        except sqlite3.OperationalError:
            return None
        return int(rows[0][0])

    async def start_position(self) -> int:
        saved = await self.cursor.load()
        if saved is not None:
            return int(saved)
        # First start: follow new events only. Replaying a long history would re-queue handoffs that
        # were asked for (and answered elsewhere) long ago.
        latest = await self._max_id()
        while latest is None:  # Rasa has not created its event table yet
            if self._stopping:
                return 0
            await asyncio.sleep(self.poll_interval)
            latest = await self._max_id()
        await self.cursor.save(latest)
        return latest

    async def run(self, sink: Sink) -> None:
        self.position = await self.start_position()
        if self._stopping:  # stopped while waiting for Rasa's event table
            return
        log.info("following Rasa events in %s after id %d", self.path, self.position)
        while not self._stopping:
            rows = await self._rows(self.position)
            if not rows:
                latest = await self._max_id()
                if latest is not None and latest < self.position:
                    # The broker database was recreated: its ids start again from 1.
                    log.warning(
                        "event table was reset (max id %d < %d); starting over", latest, self.position
                    )
                    self.position = 0
                    await self.cursor.save(0)
                    continue
                await asyncio.sleep(self.poll_interval)
                continue
            for row_id, sender_id, data in rows:
                event = parse_event(data, sender_id)
                if event is not None:
                    await deliver(sink, event)
                self.position = int(row_id)
            await self.cursor.save(self.position)


class RabbitBrokerSource:
    """Consumer of Rasa's `pika` event broker (exchange `rasa-exchange`, fanout)."""

    def __init__(self, url: str, queue: str, exchange: str = "rasa-exchange", prefetch: int = 50) -> None:
        self.url = url
        self.queue_name = queue
        self.exchange_name = exchange
        self.prefetch = prefetch
        self.name = f"rabbitmq:{queue}"
        self.ready = asyncio.Event()

    def stop(self) -> None:
        pass  # the consumer is cancelled; an unacknowledged message is redelivered

    async def run(self, sink: Sink) -> None:
        import aio_pika

        connection = await aio_pika.connect_robust(self.url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch)
            # Same declaration as Rasa's broker (fanout, not durable) or RabbitMQ refuses it.
            exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.FANOUT)
            queue = await channel.declare_queue(self.queue_name, durable=True)
            await queue.bind(exchange, "")
            consumers = getattr(queue.declaration_result, "consumer_count", 0)
            if consumers:
                # Consumers of one queue share its messages: this desk would miss what another takes.
                log.error(
                    "RabbitMQ queue %s already has %d consumer(s): every desk process needs its own"
                    " DESK_RABBITMQ_QUEUE or each misses the events the others take",
                    self.queue_name,
                    consumers,
                )
            log.info("consuming Rasa events from RabbitMQ queue %s", self.queue_name)
            self.ready.set()
            async with queue.iterator() as messages:
                async for message in messages:
                    event = parse_event(message.body)
                    if event is not None:
                        await deliver(sink, event)
                    # Acknowledged after handling: a crash before this line redelivers the event.
                    await message.ack()
        finally:
            await connection.close()


def make_source(settings: Any, engine: AsyncEngine) -> EventSource:
    if settings.rabbitmq_url:
        return RabbitBrokerSource(settings.rabbitmq_url, settings.rabbitmq_queue, settings.rabbitmq_exchange)
    path = Path(settings.rasa_events_db).resolve()
    key = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return SqlBrokerSource(path, CursorStore(engine, f"sql:{key}"), settings.broker_poll_interval)
