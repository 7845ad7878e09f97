"""The desk learns about conversations from Rasa's event brokers (Rasa's own broker classes publish).

- SQL broker: Rasa's SQLEventBroker writes the SQLite file; the desk tails it by id, starts at the
  end of the history on first start, resumes from its saved cursor after a restart, and ignores a
  redelivered event.
- RabbitMQ broker: Rasa's PikaEventBroker publishes to a real RabbitMQ on 127.0.0.1:5672.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest
from rasa.core.brokers.pika import PikaEventBroker
from rasa.core.brokers.sql import SQLEventBroker

from agent_desk.app import SOURCE
from agent_desk.keys import DESK
from tests.desk.conftest import desk_settings, wait_for

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


def handoff_events(sender: str, channel: str = "telegram", code: str | None = "PC05TK0000123") -> list[dict]:
    ts = time.time()
    events = [
        {
            "sender_id": sender,
            "event": "user",
            "timestamp": ts,
            "text": "cho tôi gặp nhân viên",
            "input_channel": channel,
            "parse_data": {"intent": {"name": "human_handoff", "confidence": 0.98}},
        },
        {"sender_id": sender, "event": "action", "timestamp": ts + 0.01, "name": "action_request_handoff"},
        {
            "sender_id": sender,
            "event": "bot",
            "timestamp": ts + 0.02,
            "text": "Em đã chuyển cuộc trò chuyện...",
            "data": {},
            "metadata": {"utter_action": "utter_handoff_queued"},
        },
        {
            "sender_id": sender,
            "event": "slot",
            "timestamp": ts + 0.03,
            "name": "handoff_requested",
            "value": True,
        },
    ]
    if code:
        events.insert(
            0,
            {
                "sender_id": sender,
                "event": "slot",
                "timestamp": ts - 1,
                "name": "request_code",
                "value": code.lower(),
            },
        )
    return events


async def open_by_sender(client) -> dict[str, object]:
    return {h.sender_id: h for h in await client.app[DESK].open_handoffs()}


async def test_sql_broker_tail_start_resume_and_dedupe(desk_factory, tmp_path):
    events_db = tmp_path / "rasa_events.db"
    rasa_broker = SQLEventBroker(db=str(events_db))
    for e in handoff_events("cu-old"):  # history from before the desk ever ran
        rasa_broker.publish(e)
    settings = desk_settings(tmp_path, env={"RASA_EVENTS_DB": str(events_db)})

    client = await desk_factory(settings)
    desk = client.app[DESK]
    await wait_for(lambda: asyncio.sleep(0, client.app[SOURCE].position is not None), what="source started")
    batch = handoff_events("s1")
    for e in batch:
        rasa_broker.publish(e)
    rasa_broker.publish(batch[2])  # the same action event delivered twice
    opened = await wait_for(lambda: open_by_sender(client), what="s1 queued")
    assert list(opened) == ["s1"], "history before the first start must not be queued"
    s1 = opened["s1"]
    assert s1.status == "waiting" and s1.channel == "telegram" and s1.request_code == "PC05TK0000123"
    # A later customer line shows in the queue preview.
    rasa_broker.publish(
        {
            "sender_id": "s1",
            "event": "user",
            "timestamp": time.time(),
            "text": "alo có ai không",
            "input_channel": "telegram",
        }
    )
    await wait_for(lambda: _preview_has(client, "s1", "alo có ai không"), what="preview updated")
    seen = desk.events_seen
    await client.close()

    # While the desk is down, another customer asks for a human.
    for e in handoff_events("s2", channel="zalo", code=None):
        rasa_broker.publish(e)
    client2 = await desk_factory(settings)
    opened = await wait_for(lambda: _has(client2, "s2"), what="s2 queued after restart")
    assert set(opened) == {"s1", "s2"}
    assert opened["s2"].channel == "zalo" and opened["s2"].request_code is None
    assert client2.app[DESK].events_seen == 4  # only the events published while it was down
    assert seen >= 6


async def _has(client, sender):
    opened = await open_by_sender(client)
    return opened if sender in opened else None


async def _preview_has(client, sender, text):
    opened = await open_by_sender(client)
    return sender in opened and any(m["text"] == text for m in opened[sender].last_messages)


async def test_customer_withdrawing_cancels_a_waiting_request(desk_factory, tmp_path):
    events_db = tmp_path / "rasa_events.db"
    rasa_broker = SQLEventBroker(db=str(events_db))
    client = await desk_factory(desk_settings(tmp_path, env={"RASA_EVENTS_DB": str(events_db)}))
    await wait_for(lambda: asyncio.sleep(0, client.app[SOURCE].position is not None), what="source started")
    for e in handoff_events("s3"):
        rasa_broker.publish(e)
    await wait_for(lambda: _has(client, "s3"), what="s3 queued")
    rasa_broker.publish(
        {
            "sender_id": "s3",
            "event": "slot",
            "timestamp": time.time(),
            "name": "handoff_requested",
            "value": False,
        }
    )
    await wait_for(lambda: _gone(client, "s3"), what="s3 withdrawn")
    # A conversation restarted by the customer (/restart) leaves the queue as well.
    for e in handoff_events("s4"):
        rasa_broker.publish(e)
    await wait_for(lambda: _has(client, "s4"), what="s4 queued")
    rasa_broker.publish({"sender_id": "s4", "event": "restart", "timestamp": time.time()})
    await wait_for(lambda: _gone(client, "s4"), what="s4 ended by a restart")
    closed = {h.sender_id: h.close_tag for h in await _all(client)}
    assert closed == {"s3": "withdrawn", "s4": "customer_restart"}


async def _all(client):
    import sqlalchemy as sa

    from agent_desk import db

    async with client.app[DESK].engine.connect() as conn:
        return (await conn.execute(sa.select(db.handoffs))).all()


async def _gone(client, sender):
    return sender not in await open_by_sender(client)


@pytest.fixture
async def rabbit_names():
    suffix = uuid.uuid4().hex[:10]
    names = (f"desk-test-exchange-{suffix}", f"desk-test-queue-{suffix}")
    yield names
    connection = await aio_pika.connect_robust(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(names[1])
        await channel.exchange_delete(names[0])


async def test_rabbitmq_broker_consumer(desk_factory, tmp_path, rabbit_names):
    exchange, queue = rabbit_names
    settings = desk_settings(
        tmp_path,
        env={"RABBITMQ_URL": RABBITMQ_URL, "DESK_RABBITMQ_QUEUE": queue},
        rabbitmq_exchange=exchange,
    )
    client = await desk_factory(settings)
    source = client.app[SOURCE]
    await asyncio.wait_for(source.ready.wait(), 30)

    broker = PikaEventBroker(
        "127.0.0.1", "guest", "guest", queues=[queue], exchange_name=exchange, raise_on_failure=True
    )
    await broker.connect()
    try:
        # A message that is not an event must not block the queue.
        connection = await aio_pika.connect_robust(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT)
            await ex.publish(aio_pika.Message(b"not json"), routing_key="")
        for e in handoff_events("rb-1", channel="zalo"):
            broker.publish(e)
        opened = await wait_for(lambda: _has(client, "rb-1"), what="handoff from RabbitMQ")
        assert opened["rb-1"].channel == "zalo" and opened["rb-1"].request_code == "PC05TK0000123"
    finally:
        await broker.close()
