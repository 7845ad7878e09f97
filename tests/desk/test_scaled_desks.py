"""Issue 18, more than one desk process: two desk apps on one PostgreSQL database, each consuming
Rasa's events from its own RabbitMQ queue bound to the fanout exchange (as `make run-scaled` runs
them), and the desk's nginx server block in front of them for the event stream.

Real PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672, guest); Rasa is test_assignment's fake.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from agent_desk import accounts, db, transcript
from agent_desk.app import SOURCE
from agent_desk.desk import Desk, DeskError
from agent_desk.keys import DESK
from devstack import processes, scaled
from tests.desk.conftest import PASSWORD, desk_settings, login
from tests.desk.test_assignment import FakeRasa, rasa  # noqa: F401 (fixtures)

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
pytestmark = pytest.mark.postgres


class Stream:
    """An open /api/events response, read event by event."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next(self, kind: str, match: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        event, data = "", ""
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(self.resp.content.readline(), deadline - time.monotonic())
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: "):
                data = text[6:]
            elif not text and event:
                if event == kind and match(json.loads(data)):
                    return json.loads(data)
                event, data = "", ""
        raise AssertionError(f"no {kind} event matching in {timeout} s")


def queued(sender: str, status: str = "waiting") -> Any:
    return lambda q: any(h["sender_id"] == sender for h in q.get(status, []))


@pytest.fixture
async def rabbit():
    tag = uuid.uuid4().hex[:8]
    names = {"exchange": f"desk-test-{tag}", "queues": [f"desk_test_{tag}_1", f"desk_test_{tag}_2"]}
    conn = await aio_pika.connect(AMQP)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(names["exchange"], aio_pika.ExchangeType.FANOUT)

    async def publish(event: dict[str, Any]) -> None:
        await exchange.publish(aio_pika.Message(json.dumps(event).encode()), routing_key="")

    names["publish"] = publish
    try:
        yield names
    finally:
        for q in names["queues"]:
            await channel.queue_delete(q)
        await channel.exchange_delete(names["exchange"])
        await conn.close()


@pytest.fixture
async def two_desks(desk_factory, tmp_path, postgres_url, rasa, rabbit):  # noqa: F811
    fake, rasa_url = rasa
    clients: list[TestClient] = []
    agents = {}
    for i, queue in enumerate(rabbit["queues"], 1):
        settings = desk_settings(
            tmp_path,
            env={
                "DESK_DATABASE_URL": postgres_url,
                "RASA_URL": rasa_url,
                "RABBITMQ_URL": AMQP,
                "DESK_RABBITMQ_QUEUE": queue,
                "RABBITMQ_EXCHANGE": rabbit["exchange"],
                "DESK_SWEEP_INTERVAL": "30",  # only the notifications refresh the other desk here
                "BOT_FAILURES_URL": f"sqlite:///{tmp_path / f'bot_failures_{i}.db'}",
            },
        )
        client = await desk_factory(settings)
        clients.append(client)
        if i == 1:  # the first creates the schema; the accounts are shared
            for name in ("anh", "binh"):
                agents[name] = await accounts.create(
                    client.app[DESK].engine, name, PASSWORD, "agent", name.capitalize()
                )
    for client in clients:
        await asyncio.wait_for(client.app[SOURCE].ready.wait(), 10)
        await asyncio.wait_for(client.app[DESK].peers.connected.wait(), 10)
    return clients, fake, agents


async def ask_for_human(publish: Any, sender: str) -> float:
    ts = time.time()
    await publish({"sender_id": sender, "event": "user", "timestamp": ts, "text": "gặp nhân viên"})
    await publish(
        {"sender_id": sender, "event": "action", "timestamp": ts + 0.01, "name": transcript.HANDOFF_ACTION}
    )
    return ts


async def open_stream(client: TestClient, username: str) -> Stream:
    await login(client, username)
    resp = await client.get("/api/events")
    assert resp.status == 200
    return Stream(resp)


async def handoff_rows(desk: Desk, sender: str) -> list[Any]:
    async with desk.engine.connect() as conn:
        return (await conn.execute(sa.select(db.handoffs).where(db.handoffs.c.sender_id == sender))).all()


async def test_every_desk_sees_every_event_and_the_others_changes(two_desks, rabbit):
    (a, b), _fake, agents = two_desks
    desk_a, desk_b = a.app[DESK], b.app[DESK]
    stream_a, stream_b = await open_stream(a, "anh"), await open_stream(b, "binh")
    sender = f"zalo-{uuid.uuid4().hex[:8]}"
    await ask_for_human(rabbit["publish"], sender)

    # Both streams show the request; the database holds exactly one handoff.
    await stream_a.next("queue", queued(sender))
    await stream_b.next("queue", queued(sender))
    rows = await handoff_rows(desk_a, sender)
    assert len(rows) == 1
    handoff_id = rows[0].id

    # A message after the request: one preview line, though both desks handled the event.
    ts = time.time()
    await rabbit["publish"]({"sender_id": sender, "event": "user", "timestamp": ts, "text": "alo em ơi"})
    has_line = lambda q: any(  # noqa: E731
        h["sender_id"] == sender and any(m["text"] == "alo em ơi" for m in h["last_messages"])
        for h in q["waiting"]
    )
    await stream_a.next("queue", has_line)
    await stream_b.next("queue", has_line)
    await asyncio.sleep(0.5)  # both desks done with the event
    handoff = await desk_b.get(handoff_id)
    assert handoff is not None
    assert [m["text"] for m in handoff.last_messages].count("alo em ơi") == 1

    # A claim on desk A shows on desk B's stream (no broker event says so: the notification does).
    an = agents["anh"]
    await desk_a.claim(handoff_id, an)
    got = await stream_b.next("queue", queued(sender, "active"))
    assert [h["agent_name"] for h in got["active"] if h["sender_id"] == sender] == ["Anh"]
    await stream_a.next("queue", queued(sender, "active"))

    # An agents' broadcast (a transfer notice, a presence change) reaches the other desk's browsers.
    desk_a.hub.publish("presence", {"agent_id": an.id, "status": "away"})
    await stream_b.next("presence", lambda d: d == {"agent_id": an.id, "status": "away"})

    # Handed back on desk A: desk B's cache forgets it, its stream drops it.
    await desk_a.hand_back(handoff_id, an, "resolved")
    await stream_b.next("queue", lambda q: all(h["sender_id"] != sender for h in q["waiting"] + q["active"]))
    assert sender not in desk_b._open


async def test_concurrent_claims_on_two_desks_give_one_owner(two_desks, rabbit):
    (a, b), fake, agents = two_desks
    desk_a, desk_b = a.app[DESK], b.app[DESK]
    an, binh = agents["anh"], agents["binh"]
    for _ in range(5):
        sender = f"zalo-{uuid.uuid4().hex[:8]}"
        await ask_for_human(rabbit["publish"], sender)
        for _ in range(100):
            if sender in desk_a._open and sender in desk_b._open:
                break
            await asyncio.sleep(0.05)
        rows = await handoff_rows(desk_a, sender)
        assert len(rows) == 1
        results = await asyncio.gather(
            desk_a.claim(rows[0].id, an), desk_b.claim(rows[0].id, binh), return_exceptions=True
        )
        assert sum(isinstance(r, DeskError) for r in results) == 1, results
        assert len(fake.joined(sender)) == 1  # the customer is told of one agent only


def test_nginx_passes_the_desk_event_stream_unbuffered() -> None:
    conf = scaled.render_nginx(
        user=None,
        worker_processes=1,
        foreground=True,
        listen_host="127.0.0.1",
        run_dir="/tmp/x",
        log_dir="/tmp/x",
        public_port=1,
        rasa_api_port=2,
        signing_api_port=3,
        actions_api_port=4,
        rasa_servers=["127.0.0.1:5"],
        action_servers=["127.0.0.1:6"],
        signing_servers=["127.0.0.1:7"],
        desk_port=8,
        desk_servers=["127.0.0.1:9", "127.0.0.1:10"],
    )
    desk_block = conf.split("upstream desk {", 1)[1]
    assert "server 127.0.0.1:9 " in desk_block and "server 127.0.0.1:10 " in desk_block
    events = conf.split("location = /api/events {", 1)[1].split("}", 1)[0]
    for setting in ("proxy_buffering off;", "proxy_read_timeout 1h;", "proxy_pass http://desk;"):
        assert setting in events
    assert "proxy_http_version 1.1;" in conf
    assert "upstream desk" not in scaled.compose_nginx_conf()  # compose publishes its one desk itself


@pytest.mark.skipif(not Path(scaled.NGINX).exists(), reason="nginx not installed")
async def test_event_stream_through_nginx(two_desks, rabbit, tmp_path):
    (a, b), _fake, _agents = two_desks
    port = processes.free_port()
    run = tmp_path / "nginx"
    run.mkdir()
    conf = run / "nginx.conf"
    conf.write_text(
        scaled.render_nginx(
            user=None,
            worker_processes=1,
            foreground=True,
            listen_host="127.0.0.1",
            run_dir=run,
            log_dir=run,
            public_port=processes.free_port(),
            rasa_api_port=processes.free_port(),
            signing_api_port=processes.free_port(),
            actions_api_port=processes.free_port(),
            rasa_servers=["127.0.0.1:9"],
            action_servers=["127.0.0.1:9"],
            signing_servers=["127.0.0.1:9"],
            desk_port=port,
            desk_servers=[f"127.0.0.1:{a.server.port}", f"127.0.0.1:{b.server.port}"],
        )
    )
    nginx = await asyncio.create_subprocess_exec(
        scaled.NGINX, "-p", str(run), "-c", str(conf), "-e", str(run / "error.log")
    )
    try:
        import aiohttp

        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as session:
            for _ in range(50):
                try:
                    async with session.get("/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            streams = []
            for name in ("anh", "binh"):  # least_conn: the two streams land on the two desks
                await login(session, name)  # type: ignore[arg-type]
                resp = await session.get("/api/events")
                assert resp.status == 200
                streams.append(Stream(resp))
                session.cookie_jar.clear()
            sender = f"zalo-{uuid.uuid4().hex[:8]}"
            await ask_for_human(rabbit["publish"], sender)
            for stream in streams:
                await stream.next("queue", queued(sender), timeout=5)
    finally:
        nginx.terminate()
        await asyncio.wait_for(nginx.wait(), 10)
