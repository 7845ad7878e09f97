"""No lost state when Rasa is down, one open handoff per conversation, and the same on PostgreSQL.

Events are handed to the desk's broker sink (`Desk.ingest`) directly, as the broker consumers do;
Rasa is unreachable in these tests, so every Rasa side effect fails and must be undone cleanly.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from agent_desk.accounts import create
from agent_desk.keys import DESK
from tests.conftest import POSTGRES_URL
from tests.desk.conftest import PASSWORD, add_account, desk_settings, login


def request_events(sender: str, ts: float) -> list[dict]:
    return [
        {
            "sender_id": sender,
            "event": "user",
            "timestamp": ts,
            "text": "gặp nhân viên",
            "input_channel": "zalo",
        },
        {"sender_id": sender, "event": "action", "timestamp": ts + 0.1, "name": "action_request_handoff"},
        {
            "sender_id": sender,
            "event": "slot",
            "timestamp": ts + 0.2,
            "name": "handoff_requested",
            "value": True,
        },
    ]


async def exercise(client) -> None:
    desk = client.app[DESK]
    now = time.time()
    # Two copies of the same request, delivered concurrently (two desk workers, a redelivery).
    await asyncio.gather(*(desk.ingest(e) for e in request_events("zalo-1", now) * 2))
    await asyncio.gather(*(desk.ingest(e) for e in request_events("zalo-2", now)))
    opened = await desk.open_handoffs()
    assert sorted(h.sender_id for h in opened) == ["zalo-1", "zalo-2"]
    h1 = next(h for h in opened if h.sender_id == "zalo-1")
    assert h1.channel == "zalo" and h1.status == "waiting"

    # Claiming while Rasa is down: refused with a reason, and the request stays in the queue.
    await add_account(client, "lan", name="Lan")
    token = await login(client, "lan")
    resp = await client.post(f"/conversations/{h1.id}/claim", data={"csrf_token": token})
    assert resp.status == 502
    assert "Rasa" in await resp.text()
    assert (await desk.get(h1.id)).status == "waiting"

    # The queue times out while Rasa is down: the request is kept and retried, not dropped.
    done = await desk.sweep(now=time.time() + desk.settings.queue_timeout + 1)
    assert done["timed_out"] == 0
    assert (await desk.get(h1.id)).status == "waiting"

    stats = await desk.stats()
    assert stats["queue_length"] == 2 and stats["closed_today"] == 0
    assert [a["username"] for a in stats["agents"]] == ["lan"]


async def test_rasa_down_keeps_the_queue_sqlite(desk_factory):
    await exercise(await desk_factory())


@pytest.fixture
async def postgres_db():
    name = f"desk_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.postgres
async def test_rasa_down_keeps_the_queue_postgres(desk_factory, tmp_path, postgres_db):
    client = await desk_factory(desk_settings(tmp_path, env={"DESK_DATABASE_URL": postgres_db}))
    assert client.app[DESK].engine.url.get_backend_name() == "postgresql"
    await exercise(client)
    # Account names stay unique on PostgreSQL too.
    with pytest.raises(ValueError, match="already exists"):
        await create(client.app[DESK].engine, "lan", PASSWORD, "agent", "Lan 2")


async def test_internal_notes(desk_factory):
    client = await desk_factory()
    desk = client.app[DESK]
    for e in request_events("zalo-9", time.time()):
        await desk.ingest(e)
    handoff = (await desk.open_handoffs())[0]
    await add_account(client, "lan", name="Lan")
    token = await login(client, "lan")
    note = "Khách gọi lại lúc 15h <b>gấp</b>"
    resp = await client.post(f"/conversations/{handoff.id}/notes", data={"text": note, "csrf_token": token})
    assert resp.status == 200
    page = await resp.text()
    assert "Khách gọi lại lúc 15h &lt;b&gt;gấp&lt;/b&gt;" in page and "Lan" in page
    # Without Rasa the page still opens, says why the transcript is missing, and keeps the notes.
    assert "Không tải được lịch sử hội thoại" in page
    resp = await client.post(f"/conversations/{handoff.id}/notes", data={"text": "  ", "csrf_token": token})
    assert resp.status == 400
    assert [n["text"] for n in await desk.notes("zalo-9")] == [note]
    # A phone number typed into a note is shown masked, like the transcript.
    resp = await client.post(
        f"/conversations/{handoff.id}/notes",
        data={"text": "Số khác của khách: 0912345678", "csrf_token": token},
    )
    assert resp.status == 200 and "0912345678" not in await resp.text()
