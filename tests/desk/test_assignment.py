"""Issue 18, assignment: agent status, auto-assignment round robin, transfer with a note, supervisor
takeover and reassignment, and exactly one owner when two desk processes race.

Rasa is a small fake here (tracker read and event append, recorded per conversation): it shows what
the customer would be sent ("agent joined" lines) and can refuse on demand. The real Rasa side of a
claim, which assignment reuses, is covered by test_handoff_rasa.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web

from agent_desk import accounts, assignment, db, presence, transfer
from agent_desk.desk import Desk, DeskError
from agent_desk.keys import DESK
from tests.desk.conftest import (
    csrf_of,
    desk_settings,
    login,
    make_agent,
    queue,
    wait_for,
)

JOINED = "utter_handoff_agent_joined"


class FakeRasa:
    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.fail = False

    async def tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        return web.json_response(
            {"sender_id": sender, "events": self.events[sender], "slots": {}, "latest_input_channel": "zalo"}
        )

    async def append(self, request: web.Request) -> web.Response:
        if self.fail:
            return web.json_response({"error": "down"}, status=500)
        body = await request.json()
        self.events[request.match_info["sender"]].extend(body if isinstance(body, list) else [body])
        return web.json_response({})

    def joined(self, sender: str) -> list[str]:
        """The "agent joined" lines the customer was sent, by agent username."""
        return [
            e["metadata"]["joined_agent"]
            for e in self.events[sender]
            if e.get("event") == "bot" and (e.get("metadata") or {}).get("utter_action") == JOINED
        ]


@pytest.fixture
async def rasa(aiohttp_server) -> tuple[FakeRasa, str]:
    fake = FakeRasa()
    app = web.Application()
    app.router.add_get("/conversations/{sender}/tracker", fake.tracker)
    app.router.add_post("/conversations/{sender}/tracker/events", fake.append)
    server = await aiohttp_server(app)
    return fake, str(server.make_url("")).rstrip("/")


async def start(desk_factory, tmp_path: Path, rasa_url: str, background: bool = False, **env: Any):
    settings = desk_settings(tmp_path, env={"RASA_URL": rasa_url, **env})
    return await desk_factory(settings, background=background)


async def owners(desk: Desk) -> dict[int, str | None]:
    return {h.id: h.agent_name for h in await desk.open_handoffs()}


# ---------------------------------------------------------------------- status
async def test_status_selector_and_presence_follow_the_session(desk_factory, tmp_path, rasa):
    client = await start(desk_factory, tmp_path, rasa[1])
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan", online=False)
    await make_agent(desk, "hung", role="supervisor", online=False)
    assert (await presence.get(desk.engine, desk.settings, lan.id)).status == "away"  # not logged in

    token = await login(client, "lan")
    page = await (await client.get("/")).text()
    assert 'id="presence-form"' in page and '<option value="available" selected>Sẵn sàng</option>' in page
    assert (await presence.get(desk.engine, desk.settings, lan.id)).status == "available"

    resp = await client.post("/status", data={"status": "busy", "next": "/canned"}, allow_redirects=False)
    assert resp.status == 403  # no CSRF token
    resp = await client.post(
        "/status",
        data={"status": "busy", "next": "//evil.example", "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"
    resp = await client.post(
        "/status", data={"status": "busy", "next": "/canned", "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/canned"
    assert (await presence.get(desk.engine, desk.settings, lan.id)).status == "busy"
    page = await (await client.get("/canned")).text()
    assert '<option value="busy" selected>Bận</option>' in page
    resp = await client.post("/status", data={"status": "ngủ", "csrf_token": token})
    assert resp.status == 400 and "Trạng thái không hợp lệ" in await resp.text()

    # Logged out: away, whatever was picked; logging in again restores the pick.
    await client.post("/logout", data={"csrf_token": token})
    lan_now = await presence.get(desk.engine, desk.settings, lan.id)
    assert lan_now.status == "away" and lan_now.chosen == "busy" and not lan_now.online

    await login(client, "hung")
    page = await (await client.get("/supervisor")).text()
    table = page[page.index('id="presence-table"') :]
    lan_row = table[table.index('data-agent="lan"') :].split("</tr>")[0]
    hung_row = table[table.index('data-agent="hung"') :].split("</tr>")[0]
    assert "Vắng" in lan_row and "không trực tuyến" in lan_row
    assert "Bận" in hung_row  # supervisors start busy: they are not handed conversations by default
    assert "Tự động phân công: <b>tắt</b>" in page
    api = await (await client.get("/api/presence")).json()
    assert {a["username"]: a["status"] for a in api["agents"]} == {"hung": "busy", "lan": "away"}


def test_assignment_settings_are_validated():
    from agent_desk.config import ConfigError, Settings

    s = Settings.from_env({"DESK_AUTO_ASSIGN": "1", "DESK_MAX_CONVERSATIONS_PER_AGENT": "5"})
    assert s.auto_assign and s.max_conversations_per_agent == 5
    assert not Settings.from_env({}).auto_assign and Settings.from_env({}).max_conversations_per_agent == 3
    for env in ({"DESK_AUTO_ASSIGN": "maybe"}, {"DESK_MAX_CONVERSATIONS_PER_AGENT": "0"}):
        with pytest.raises(ConfigError, match=next(iter(env))):
            Settings.from_env(env)


# ---------------------------------------------------------------------- auto-assignment
async def test_auto_assignment_round_robin_respects_status_and_cap(desk_factory, tmp_path, rasa):
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url, DESK_AUTO_ASSIGN=1, DESK_MAX_CONVERSATIONS_PER_AGENT=2)
    desk = client.app[DESK]
    lan, minh, hoa = [await make_agent(desk, n) for n in ("lan", "minh", "hoa")]
    tuan = await make_agent(desk, "tuan")
    await presence.set_status(desk.engine, tuan, "busy")
    mai = await make_agent(desk, "mai")
    await presence.set_status(desk.engine, mai, "away")
    await make_agent(desk, "son", online=False)  # available, but not logged in
    await make_agent(desk, "hung", role="supervisor")  # online, busy by default

    ids = [await queue(desk) for _ in range(7)]
    assert await assignment.assign_waiting(desk) == 6
    names = await owners(desk)
    # Round robin: the three oldest go to three different agents, then each gets a second one.
    assert len({names[i] for i in ids[:3]}) == 3 and len({names[i] for i in ids[3:6]}) == 3
    per_agent = {n: list(names.values()).count(n) for n in ("Lan", "Minh", "Hoa")}
    assert per_agent == {"Lan": 2, "Minh": 2, "Hoa": 2}  # nobody over the cap
    assert names[ids[6]] is None  # everyone available is full: the newest keeps waiting
    assert not {"Tuan", "Mai", "Son", "Hung"} & set(names.values())
    for handoff_id in ids[:6]:
        handoff = await desk.get(handoff_id)
        # The customer is told once, with the name of the agent who got it (the claim's Rasa side).
        assert fake.joined(handoff.sender_id) == [handoff.agent_name.lower()]
        assert fake.events[handoff.sender_id][-3]["event"] == "pause"

    # Lan closes one: the waiting conversation goes to her, the only one below the cap.
    lan_first = next(i for i in ids if names[i] == "Lan")
    await desk.hand_back(lan_first, lan, "resolved")
    assert await assignment.assign_waiting(desk) == 1
    assert (await desk.get(ids[6])).agent_name == "Lan"

    # Ties on load go to whoever was assigned longest ago.
    async with desk.engine.begin() as conn:
        await conn.execute(
            db.handoffs.update().where(db.handoffs.c.status == "active").values(status="closed")
        )
    await presence.set_status(desk.engine, hoa, "busy")
    first, second = await queue(desk), await queue(desk)
    assert await assignment.assign_waiting(desk) == 2
    # Lan got the last one, so Minh goes first, then Lan.
    assert (await desk.get(first)).agent_id == minh.id and (await desk.get(second)).agent_id == lan.id


async def test_auto_assignment_off_leaves_the_queue_alone(desk_factory, tmp_path, rasa):
    client = await start(desk_factory, tmp_path, rasa[1], background=True)
    desk = client.app[DESK]
    await make_agent(desk, "lan")
    handoff_id = await queue(desk)
    assert await assignment.assign_waiting(desk) == 0
    await asyncio.sleep(1)  # several sweeps
    assert (await desk.get(handoff_id)).status == "waiting"


async def test_the_sweep_assigns_and_an_idle_agent_becomes_away(desk_factory, tmp_path, rasa):
    fake, url = rasa
    client = await start(
        desk_factory, tmp_path, url, background=True, DESK_AUTO_ASSIGN=1, AGENT_IDLE_TIMEOUT=2
    )
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan")
    handoff_id = await queue(desk)

    async def owner() -> int | None:
        return (await desk.get(handoff_id)).agent_id

    assert await wait_for(owner, 10, "auto-assignment by the sweep") == lan.id

    # Lan never opens it: it goes back to the queue, Lan is set away, and it is not given back to her.
    async def lan_away() -> bool:
        return (await presence.get(desk.engine, desk.settings, lan.id)).status == "away"

    await wait_for(lan_away, 15, "idle agent set away")
    minh = await make_agent(desk, "minh")

    # The transfer log, not the handoff row: Minh idles too, and 2 s after he gets it the sweep
    # requeues it again. [Lan, Lan, Minh] was the race fixed in sweep_pass (test below).
    async def auto_assignees() -> list[int]:
        t = db.transfers
        async with desk.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t.c.to_agent_id)
                .where(t.c.handoff_id == handoff_id, t.c.kind == "auto")
                .order_by(t.c.id)
            )
            return list(rows.scalars())

    async def minh_got_it() -> bool:
        return await auto_assignees() == [lan.id, minh.id]

    await wait_for(minh_got_it, 15, "requeued conversation given to the other agent")
    assert (await desk.get(handoff_id)).requeue_count >= 1
    sender = (await desk.get(handoff_id)).sender_id

    # The customer hears of Minh once the assignment is stored (the sweep tells Rasa after its commit).
    async def both_joined() -> bool:
        return fake.joined(sender) == ["lan", "minh"]

    await wait_for(both_joined, 10, "Rasa told that Minh joined")


async def test_an_agent_is_set_away_in_the_same_pass_that_requeues_their_conversation(
    desk_factory, tmp_path, rasa, monkeypatch
):
    """On a loaded machine the clock moved past the idle limit between setting idle agents away and
    requeuing: the conversation went back to the queue while Lan stayed available, and straight back
    to her. A clock that moves a second at every read makes that happen at every pass."""
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url, DESK_AUTO_ASSIGN=1, AGENT_IDLE_TIMEOUT=2)
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan")
    handoff_id = await queue(desk)
    assert await assignment.assign_waiting(desk) == 1
    claimed_at = (await desk.get(handoff_id)).agent_activity_at
    clock = iter(claimed_at + 1.5 + i for i in range(10_000))  # 0.5 s before the idle limit
    monkeypatch.setattr(time, "time", lambda: next(clock))

    for _ in range(3):
        await assignment.sweep_pass(desk)
    h = await desk.get(handoff_id)
    assert (h.status, h.agent_id, h.requeue_count) == ("waiting", None, 1)
    assert (await presence.get(desk.engine, desk.settings, lan.id)).status == "away"
    async with desk.engine.connect() as conn:
        t = db.transfers
        given = (await conn.execute(sa.select(t.c.to_agent_id).where(t.c.handoff_id == handoff_id))).all()
    assert [row.to_agent_id for row in given] == [lan.id]  # never given back to her
    assert fake.joined(h.sender_id) == ["lan"]


# ---------------------------------------------------------------------- transfer
async def test_transfer_to_an_agent_and_back_to_the_queue_with_a_note(
    desk_factory, tmp_path, rasa, aiohttp_client
):
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url)
    desk = client.app[DESK]
    await make_agent(desk, "lan", online=False)
    minh = await make_agent(desk, "minh", online=False)
    mai = await make_agent(desk, "mai")
    await presence.set_status(desk.engine, mai, "away")
    handoff_id = await queue(desk)
    sender = (await desk.get(handoff_id)).sender_id

    lan_token = await login(client, "lan")
    minh_client = await aiohttp_client(client.server)
    minh_token = await login(minh_client, "minh")
    resp = await client.post(f"/conversations/{handoff_id}/claim", data={"csrf_token": lan_token})
    assert resp.status == 200
    page = await resp.text()
    assert 'id="transfer-form"' in page and "Minh (sẵn sàng, đang xử lý 0)" in page
    assert 'id="takeover-form"' not in page  # agents do not take over

    url_transfer = f"/conversations/{handoff_id}/transfer"
    resp = await client.post(url_transfer, data={"to": str(minh.id), "note": "  ", "csrf_token": lan_token})
    assert resp.status == 400 and "ghi chú" in (await resp.text()).lower()
    resp = await client.post(
        url_transfer, data={"to": str(mai.id), "note": "giúp em", "csrf_token": lan_token}
    )
    assert resp.status == 409 and "Mai đang vắng" in await resp.text()
    resp = await client.post(url_transfer, data={"to": "x1", "note": "giúp em", "csrf_token": lan_token})
    assert resp.status == 400

    # Minh's browser is on the queue page: the event stream tells him.
    stream = await minh_client.get("/api/events")

    async def read_until(marker: str) -> str:
        buffer = ""
        while marker not in buffer:
            buffer += (await stream.content.readany()).decode()
        return buffer

    reader = asyncio.create_task(read_until("event: assigned"))
    await asyncio.sleep(0.2)
    note = "Khách hỏi tiền điện tháng 5, <b>đã</b> gửi mã khách hàng"
    resp = await client.post(
        url_transfer, data={"to": str(minh.id), "note": note, "csrf_token": lan_token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"
    events = await asyncio.wait_for(reader, 10)
    assert f'"handoff_id": {handoff_id}' in events and f'"to_agent_id": {minh.id}' in events
    stream.close()
    handoff = await desk.get(handoff_id)
    assert handoff.status == "active" and handoff.agent_id == minh.id
    assert fake.joined(sender) == ["lan", "minh"]  # the customer is told who took over

    # Lan no longer owns it; Minh sees the note, labelled, escaped, and can reply.
    resp = await client.post(
        f"/conversations/{handoff_id}/reply",
        json={"text": "còn em"},
        headers={"X-CSRF-Token": lan_token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 403
    page = await (await minh_client.get(f"/conversations/{handoff_id}")).text()
    notes = page[page.index('id="notes"') :]
    assert "chuyển cho Minh" in notes and "&lt;b&gt;đã&lt;/b&gt;" in notes and 'id="reply-form"' in page

    resp = await minh_client.post(
        url_transfer, data={"to": "queue", "note": "Cần người biết về công tơ", "csrf_token": minh_token}
    )
    assert resp.status == 200  # followed to the queue page
    handoff = await desk.get(handoff_id)
    assert handoff.status == "waiting" and handoff.agent_id is None and handoff.requeue_count == 1
    assert fake.joined(sender) == ["lan", "minh"]  # still paused: nothing new sent to the customer
    page = await (await minh_client.get(f"/conversations/{handoff_id}")).text()
    assert "trả về hàng chờ" in page and "Cần người biết về công tơ" in page
    async with desk.engine.connect() as conn:
        kinds = (await conn.execute(db.transfers.select().order_by(db.transfers.c.id))).all()
    assert [(k.kind, k.to_agent_id) for k in kinds] == [("transfer", minh.id), ("queue", None)]


async def test_only_the_owner_or_a_supervisor_may_transfer(desk_factory, tmp_path, rasa, aiohttp_client):
    client = await start(desk_factory, tmp_path, rasa[1])
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan")
    minh = await make_agent(desk, "minh", online=False)
    await make_agent(desk, "hung", role="supervisor", online=False)
    active_id, waiting_id = await queue(desk), await queue(desk)
    await desk.claim(active_id, lan)

    token = await login(client, "minh")
    for handoff_id, status in ((active_id, 403), (waiting_id, 409)):
        resp = await client.post(
            f"/conversations/{handoff_id}/transfer",
            data={
                "to": "queue" if handoff_id == active_id else str(minh.id),
                "note": "x",
                "csrf_token": token,
            },
        )
        assert resp.status == status, await resp.text()
    resp = await client.post(f"/conversations/{active_id}/takeover", data={"csrf_token": token})
    assert resp.status == 403
    page = await (await client.get(f"/conversations/{active_id}")).text()
    assert 'id="transfer-form"' not in page
    assert (await desk.get(active_id)).agent_id == lan.id

    # A supervisor reassigns it (to Minh) though it is not theirs.
    sup = await aiohttp_client(client.server)
    sup_token = await login(sup, "hung")
    resp = await sup.post(
        f"/conversations/{active_id}/transfer",
        data={"to": str(minh.id), "note": "Lan hết ca", "csrf_token": sup_token},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/conversations/{active_id}"
    assert (await desk.get(active_id)).agent_id == minh.id
    page = await (await sup.get(f"/conversations/{active_id}")).text()
    assert "giám sát giao cho Minh" in page


async def test_supervisor_takes_over_and_gives_conversations(desk_factory, tmp_path, rasa):
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url)
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan")
    minh = await make_agent(desk, "minh")
    hung = await make_agent(desk, "hung", role="supervisor", online=False)
    active_id, waiting_id = await queue(desk), await queue(desk)
    await desk.claim(active_id, lan)

    token = await login(client, "hung")
    page = await (await client.get(f"/conversations/{active_id}")).text()
    assert 'id="takeover-form"' in page and "Tiếp quản" in page and "Giao cho…" in page
    resp = await client.post(
        f"/conversations/{active_id}/takeover", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    handoff = await desk.get(active_id)
    assert handoff.agent_id == hung.id
    assert fake.joined(handoff.sender_id) == ["lan", "hung"]
    page = await (await client.get(f"/conversations/{active_id}")).text()
    assert 'id="reply-form"' in page and 'id="takeover-form"' not in page

    # "Giao cho…" on a waiting conversation: the claim, on Minh's behalf.
    page = await (await client.get(f"/conversations/{waiting_id}")).text()
    assert 'value="queue"' not in page  # it is in the queue already
    resp = await client.post(
        f"/conversations/{waiting_id}/transfer",
        data={"to": str(minh.id), "note": "Minh rành hợp đồng", "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303
    handoff = await desk.get(waiting_id)
    assert handoff.status == "active" and handoff.agent_id == minh.id
    assert fake.joined(handoff.sender_id) == ["minh"]

    # Takeover of a waiting one is a claim too.
    third = await queue(desk)
    await transfer.take_over(desk, third, hung, "khách VIP")
    assert (await desk.get(third)).agent_id == hung.id
    with pytest.raises(DeskError) as refused:
        await transfer.take_over(desk, third, lan)
    assert refused.value.status == 403


async def test_a_transfer_is_undone_when_rasa_refuses(desk_factory, tmp_path, rasa):
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url)
    desk = client.app[DESK]
    lan, minh = await make_agent(desk, "lan"), await make_agent(desk, "minh")
    handoff_id = await queue(desk)
    await desk.claim(handoff_id, lan)
    fake.fail = True
    with pytest.raises(DeskError) as refused:
        await transfer.transfer(desk, handoff_id, lan, minh.id, "giúp em")
    assert refused.value.status == 502
    assert (await desk.get(handoff_id)).agent_id == lan.id
    async with desk.engine.connect() as conn:
        assert (await conn.scalar(sa_count(db.transfers))) == 0


async def test_a_hand_back_is_undone_when_rasa_refuses(desk_factory, tmp_path, rasa):
    """The conversation stays the agent's (not closed, no tag) when Rasa cannot resume the bot, and
    the agent can hand it back once Rasa answers again."""
    fake, url = rasa
    client = await start(desk_factory, tmp_path, url)
    desk = client.app[DESK]
    lan = await make_agent(desk, "lan")
    handoff_id = await queue(desk)
    await desk.claim(handoff_id, lan)
    fake.fail = True
    with pytest.raises(DeskError) as refused:
        await desk.hand_back(handoff_id, lan, "resolved")
    assert refused.value.status == 502
    kept = await desk.get(handoff_id)
    assert (kept.status, kept.agent_id, kept.close_tag) == ("active", lan.id, None)
    fake.fail = False
    await desk.hand_back(handoff_id, lan, "resolved")
    closed = await desk.get(handoff_id)
    assert (closed.status, closed.close_tag) == ("closed", "resolved")


def sa_count(table):
    return sa.select(sa.func.count()).select_from(table)


# ---------------------------------------------------------------------- two desk processes
async def race(
    desk_factory, tmp_path: Path, url: str, fake: FakeRasa, database_url: str, rounds: int
) -> None:
    """Two desks on one database: auto-assignment, manual claims and transfers fight over the same
    conversations; every round ends with exactly one owner, announced to the customer once."""
    env = {"DESK_AUTO_ASSIGN": 1, "DESK_MAX_CONVERSATIONS_PER_AGENT": 50, "DESK_DATABASE_URL": database_url}
    one = (await start(desk_factory, tmp_path, url, **env)).app[DESK]
    two = (await start(desk_factory, tmp_path, url, **env)).app[DESK]
    lan, minh, hoa = [await make_agent(one, n) for n in ("lan", "minh", "hoa")]
    hung = await make_agent(one, "hung", role="supervisor")

    async def attempt(coro) -> str:
        try:
            await coro
            return "ok"
        except DeskError as exc:
            return str(exc.status)

    for n in range(rounds):
        handoff_id = await queue(one)
        contenders = [assignment.assign_waiting(one), assignment.assign_waiting(two)]
        if n % 3:  # every third round the two auto-assigners race alone
            contenders += [attempt(one.claim(handoff_id, lan)), attempt(two.claim(handoff_id, minh))]
        await asyncio.gather(*contenders)
        handoff = await two.get(handoff_id)
        assert handoff.status == "active" and handoff.agent_id in {lan.id, minh.id, hoa.id}
        assert len(fake.joined(handoff.sender_id)) == 1, fake.joined(handoff.sender_id)
        owner = next(a for a in (lan, minh, hoa) if a.id == handoff.agent_id)
        # The owner passes it on while the supervisor reassigns and takes over from the other desk.
        results = await asyncio.gather(
            attempt(transfer.transfer(one, handoff_id, owner, hoa.id if owner != hoa else lan.id, "chuyển")),
            attempt(transfer.transfer(two, handoff_id, hung, minh.id if owner != minh else lan.id, "giao")),
            attempt(transfer.take_over(two, handoff_id, hung)),
        )
        handoff = await one.get(handoff_id)
        assert handoff.status == "active" and handoff.agent_id is not None
        joined = fake.joined(handoff.sender_id)
        # Each move that won announced its agent once; losers changed nothing.
        assert len(joined) == 1 + results.count("ok"), (results, joined)
        assert (await accounts.get(one.engine, handoff.agent_id)).username in joined
        async with one.engine.begin() as conn:
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == handoff_id).values(status="closed")
            )

    # The cap holds across processes: two desks assigning at once give Lan one conversation, not two.
    async with one.engine.begin() as conn:
        await conn.execute(db.presence.update().values(status="busy"))
    await presence.set_status(one.engine, lan, "available")
    limited = {**env, "DESK_MAX_CONVERSATIONS_PER_AGENT": 1}
    one_l = (await start(desk_factory, tmp_path, url, **limited)).app[DESK]
    two_l = (await start(desk_factory, tmp_path, url, **limited)).app[DESK]
    for _ in range(max(3, rounds // 5)):
        first, second = await queue(one_l), await queue(one_l)
        counts = await asyncio.gather(assignment.assign_waiting(one_l), assignment.assign_waiting(two_l))
        assert sum(counts) == 1
        states = {(await one_l.get(i)).status for i in (first, second)}
        assert states == {"active", "waiting"}
        async with one.engine.begin() as conn:
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id.in_([first, second])).values(status="closed")
            )


async def test_two_desks_never_give_a_conversation_two_owners_sqlite(desk_factory, tmp_path, rasa):
    fake, url = rasa
    await race(desk_factory, tmp_path, url, fake, f"sqlite:///{tmp_path / 'desk.db'}", rounds=25)


@pytest.mark.postgres
async def test_two_desks_never_give_a_conversation_two_owners_postgres(
    postgres_url, desk_factory, tmp_path, rasa
):
    # postgres_url first: the database outlives the desks using it.
    fake, url = rasa
    await race(desk_factory, tmp_path, url, fake, postgres_url, rounds=25)


async def test_csrf_is_required_for_transfer_and_takeover(desk_factory, tmp_path, rasa):
    client = await start(desk_factory, tmp_path, rasa[1])
    desk = client.app[DESK]
    await make_agent(desk, "hung", role="supervisor", online=False)
    handoff_id = await queue(desk)
    await login(client, "hung")
    for action in ("transfer", "takeover"):
        resp = await client.post(f"/conversations/{handoff_id}/{action}", data={"to": "queue", "note": "x"})
        assert resp.status == 403
    assert await csrf_of(client, f"/conversations/{handoff_id}")
