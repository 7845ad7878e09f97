"""Take over, reply, hand back and the timeouts, against a real Rasa server and its SQL event broker.

The customer's request for a human is appended to the real tracker exactly as the bot's
`action_request_handoff` records it (action event + `handoff_requested` slot), so these tests do not
depend on the bot's NLU; the browser test covers the whole flow through the trained bot.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from typing import Any

import aiohttp
import pytest

from agent_desk.app import SOURCE
from agent_desk.keys import DESK
from agent_desk.responses import DomainResponses
from tests.desk.conftest import add_account, csrf_of, desk_settings, login, wait_for
from tests.desk.rasa_env import RasaEnv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


class Rasa:
    """Just enough of the customer side and of Rasa's API to drive and observe a conversation."""

    def __init__(self, env: RasaEnv, session: aiohttp.ClientSession) -> None:
        self.env = env
        self.session = session

    async def say(self, sender: str, text: str) -> list[dict[str, Any]]:
        async with self.session.post(
            f"{self.env.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def tracker(self, sender: str) -> dict[str, Any]:
        async with self.session.get(
            f"{self.env.rasa_url}/conversations/{sender}/tracker",
            params={"token": self.env.token, "include_events": "ALL"},
        ) as resp:
            assert resp.status == 200
            return await resp.json()

    async def ask_for_human(self, sender: str, code: str | None = "PC05TK0000123") -> None:
        """What the bot records when a customer asks for a human (see bot/actions: action_request_handoff)."""
        events: list[dict[str, Any]] = []
        if code:
            events.append({"event": "slot", "name": "request_code", "value": code})
        events += [
            {"event": "action", "name": "action_request_handoff"},
            {"event": "bot", "text": "Em đã chuyển cuộc trò chuyện tới nhân viên tổng đài...", "data": {}},
            {"event": "slot", "name": "handoff_requested", "value": True},
        ]
        async with self.session.post(
            f"{self.env.rasa_url}/conversations/{sender}/tracker/events",
            params={"token": self.env.token},
            json=events,
        ) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def rasa(rasa_env: RasaEnv):
    async with aiohttp.ClientSession() as session:
        yield Rasa(rasa_env, session)


@pytest.fixture
def sender() -> str:
    return f"desk-{uuid.uuid4().hex[:12]}"


async def start_desk(desk_factory, tmp_path, rasa_env: RasaEnv, **env: Any):
    client = await desk_factory(desk_settings(tmp_path, env={**rasa_env.desk_env(), **env}))
    await wait_for(
        lambda: asyncio.sleep(0, client.app[SOURCE].position is not None), what="event source started"
    )
    await add_account(client, "lan", name="Lan")
    await add_account(client, "minh", name="Minh")
    return client


async def queued(client, sender: str):
    async def find():
        return next((h for h in await client.app[DESK].open_handoffs() if h.sender_id == sender), None)

    return await wait_for(find, what=f"{sender} in the queue")


def texts(tracker: dict[str, Any], kind: str = "bot") -> list[str]:
    return [e.get("text") or "" for e in tracker["events"] if e["event"] == kind]


async def test_take_over_reply_and_hand_back(desk_factory, tmp_path, rasa_env, rasa, sender):
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender)
    handoff = await queued(client, sender)
    assert handoff.channel == "rest" and handoff.request_code == "PC05TK0000123"
    assert handoff.last_messages[-1]["text"].startswith("Em đã chuyển cuộc trò chuyện")

    token = await login(client, "lan")
    page = await (await client.get("/")).text()
    assert "PC05TK0000123" in page and f"/conversations/{handoff.id}/claim" in page
    resp = await client.post(
        f"/conversations/{handoff.id}/claim", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/conversations/{handoff.id}"

    tracker = await rasa.tracker(sender)
    joined = DomainResponses(client.app[DESK].settings.domain_path).text(
        "utter_handoff_agent_joined", agent_name="Lan"
    )
    assert tracker["paused"] is True
    assert texts(tracker)[-1] == joined and "Lan" in joined
    # While paused, the bot stays silent and the customer's words reach the agent's transcript.
    assert await rasa.say(sender, "em cần hỏi về hợp đồng") == []
    page = await (await client.get(f"/conversations/{handoff.id}")).text()
    assert "em cần hỏi về hợp đồng" in page and joined in page

    reply = "Dạ, hợp đồng của anh/chị đang chờ ký, xem tại https://cskh.cpc.vn/tra-cuu nhé."
    resp = await client.post(
        f"/conversations/{handoff.id}/reply",
        json={"text": reply},
        headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 200, await resp.text()
    tracker = await rasa.tracker(sender)
    agent_line = [e for e in tracker["events"] if e["event"] == "bot"][-1]
    assert agent_line["text"] == reply and agent_line["metadata"]["agent_name"] == "Lan"
    page = await (await client.get(f"/conversations/{handoff.id}")).text()
    assert '<a href="https://cskh.cpc.vn/tra-cuu"' in page  # links are clickable, text escaped

    resp = await client.post(
        f"/conversations/{handoff.id}/handback",
        data={"tag": "resolved", "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303
    tracker = await rasa.tracker(sender)
    assert tracker["paused"] is False
    tail = [e["event"] + ":" + (e.get("name") or "") for e in tracker["events"][-7:]]
    assert tail[0] == "resume:" and tail[-1] == "action:action_listen"
    # The satisfaction survey (agent_desk/csat.py) comes last, before action_listen.
    assert tail[-3] == "action:utter_csat_ask" and len(texts(tracker)[-1]) > 0
    returned = DomainResponses(client.app[DESK].settings.domain_path).text("utter_handoff_returned")
    assert returned in texts(tracker)
    closed = await client.app[DESK].get(handoff.id)
    assert closed.status == "closed" and closed.close_tag == "resolved"
    # The bot answers again.
    assert await rasa.say(sender, "xin chào") != []


async def test_second_claim_is_refused(desk_factory, tmp_path, rasa_env, rasa, sender, aiohttp_client):
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    other = await aiohttp_client(client.server)  # a second browser on the same desk
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender)
    handoff = await queued(client, sender)
    t1, t2 = await login(client, "lan"), await login(other, "minh")
    r1, r2 = await asyncio.gather(
        client.post(f"/conversations/{handoff.id}/claim", data={"csrf_token": t1}, allow_redirects=False),
        other.post(f"/conversations/{handoff.id}/claim", data={"csrf_token": t2}, allow_redirects=False),
    )
    statuses = sorted([r1.status, r2.status])
    assert statuses == [303, 409]
    loser = r2 if r2.status == 409 else r1
    winner_name = "Lan" if loser is r2 else "Minh"
    assert f"đã được {winner_name} nhận xử lý" in await loser.text()
    tracker = await rasa.tracker(sender)
    joined = [
        e
        for e in tracker["events"]
        if e["event"] == "bot"
        and (e.get("metadata") or {}).get("utter_action") == "utter_handoff_agent_joined"
    ]
    assert len(joined) == 1 and winner_name in joined[0]["text"]
    # The loser cannot reply nor hand back.
    loser_client, loser_token = (other, t2) if loser is r2 else (client, t1)
    resp = await loser_client.post(
        f"/conversations/{handoff.id}/reply",
        json={"text": "chen ngang"},
        headers={"X-CSRF-Token": loser_token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 403
    resp = await loser_client.post(
        f"/conversations/{handoff.id}/handback", data={"tag": "resolved", "csrf_token": loser_token}
    )
    assert resp.status == 403
    assert (await client.app[DESK].get(handoff.id)).status == "active"


async def test_unclaimed_request_times_out_with_hotline(desk_factory, tmp_path, rasa_env, rasa, sender):
    client = await start_desk(desk_factory, tmp_path, rasa_env, HANDOFF_QUEUE_TIMEOUT=2)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender)
    handoff = await queued(client, sender)

    async def timed_out():
        h = await client.app[DESK].get(handoff.id)
        return h.status == "timed_out"

    await wait_for(timed_out, timeout=20, what="queue timeout")

    # The desk marks the request timed out, then resumes the bot (a Rasa API call): wait for it.
    async def hotline_given() -> bool:
        return "19001909" in texts(await rasa.tracker(sender))[-1]

    await wait_for(hotline_given, timeout=20, what="hotline message after the timeout")
    tracker = await rasa.tracker(sender)
    assert "19001909" in texts(tracker)[-1]
    assert tracker["paused"] is False and tracker["events"][-1]["name"] == "action_listen"
    assert sender not in {h.sender_id for h in await client.app[DESK].open_handoffs()}


async def test_idle_agent_returns_conversation_to_queue(desk_factory, tmp_path, rasa_env, rasa, sender):
    client = await start_desk(desk_factory, tmp_path, rasa_env, AGENT_IDLE_TIMEOUT=2)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender)
    handoff = await queued(client, sender)
    token = await login(client, "lan")
    await client.post(f"/conversations/{handoff.id}/claim", data={"csrf_token": token})

    async def requeued():
        h = await client.app[DESK].get(handoff.id)
        return h if h.status == "waiting" else None

    h = await wait_for(requeued, timeout=20, what="idle agent's conversation back in the queue")
    assert h.agent_id is None and h.requeue_count == 1
    assert (await rasa.tracker(sender))["paused"] is True  # the bot stays quiet; a colleague takes over
    resp = await client.post(
        f"/conversations/{handoff.id}/reply",
        json={"text": "còn đó không"},
        headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 409 and "hàng chờ" in (await resp.json())["message"]


async def test_sse_announces_new_arrivals(desk_factory, tmp_path, rasa_env, rasa, sender):
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    await login(client, "lan")
    resp = await client.get("/api/events")
    assert resp.headers["Content-Type"].startswith("text/event-stream")

    async def read_until_sender() -> str:
        buffer = ""
        while sender not in buffer:
            buffer += (await resp.content.readany()).decode()
        return buffer

    reader = asyncio.create_task(read_until_sender())
    await asyncio.sleep(0.3)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender)
    stream = await asyncio.wait_for(reader, 20)
    assert re.search(r"event: queue\ndata: .*" + sender, stream)
    resp.close()


async def test_demo_chat_shows_agent_messages(desk_factory, tmp_path, rasa_env, rasa):
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    customer = client  # the demo page is public; the agent logs in later in the same test client
    demo_page = await customer.get("/demo")
    assert demo_page.status == 200
    demo_cookie = customer.session.cookie_jar.filter_cookies(customer.make_url("/"))["desk_demo"].value
    sender = f"demo-{demo_cookie}"
    token = await csrf_of(customer, "/demo")
    resp = await customer.post(
        "/demo/api/send", json={"message": "xin chào", "cursor": 0}, headers={"X-CSRF-Token": token}
    )
    assert resp.status == 200, await resp.text()
    first = await resp.json()
    assert first["messages"], "the bot answered through the proxy"
    cursor = first["cursor"]
    too_long = await customer.post(
        "/demo/api/send", json={"message": "x" * 501}, headers={"X-CSRF-Token": token}
    )
    assert too_long.status == 400

    await rasa.ask_for_human(sender)
    handoff = await queued(client, sender)
    agent_token = await login(client, "lan")
    await client.post(f"/conversations/{handoff.id}/claim", data={"csrf_token": agent_token})
    await client.post(
        f"/conversations/{handoff.id}/reply",
        json={"text": "Chào anh/chị, em là Lan."},
        headers={"X-CSRF-Token": agent_token, "X-Requested-With": "fetch"},
    )

    async def poll():
        data = await (await customer.get(f"/demo/api/messages?after={cursor}")).json()
        return data if any(m["text"] == "Chào anh/chị, em là Lan." for m in data["messages"]) else None

    data = await wait_for(poll, what="agent message in the demo poll")
    lan = [m for m in data["messages"] if m["text"] == "Chào anh/chị, em là Lan."][0]
    assert lan["agent"] == "Lan"
    # Nothing new: the poll answers from the event stream without reading the tracker again.
    same = await (
        await customer.get(f"/demo/api/messages?after={data['cursor']}&version={data['version']}")
    ).json()
    assert same["messages"] == []


async def test_conversation_page_shows_request_from_signing_service(
    desk_factory, tmp_path, rasa_env, rasa, sender
):
    if os.environ.get("DESK_TEST_RASA_MODEL") or os.environ.get("DESK_TEST_RASA_URL"):
        pytest.skip("needs the signing service of the full stack")
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender, code="PC05TK0000123")
    handoff = await queued(client, sender)
    await login(client, "lan")
    page = await (await client.get(f"/conversations/{handoff.id}")).text()
    assert "Ký hợp đồng" in page  # current step of the demo request
    assert "Hợp đồng mua bán điện" in page or "HĐMBĐ" in page


async def test_conversation_page_shows_each_notice_and_how_it_went(
    desk_factory, tmp_path, rasa_env, rasa, sender, request
):
    """Issue 16: the desk lists the notices sent to the conversation (here by SMS: a web chat has no
    push channel), with their state, below the transcript."""
    if os.environ.get("DESK_TEST_RASA_MODEL") or os.environ.get("DESK_TEST_RASA_URL"):
        pytest.skip("needs the signing service of the full stack")
    from devstack import processes
    from tests.connectors.e2e_support import latest_otp

    stack = request.getfixturevalue("rasa_stack")
    env = {**stack.env, "NOTIFY_QUIET_HOURS": "", "NOTIFY_POLL_MS": "100"}
    notifier = processes.notifier(processes.Ports(notifier=processes.free_port()), env, tmp_path / "log")
    notifier.start()
    try:
        notifier.wait_healthy(60)
        staff = {"Authorization": f"Bearer {stack.token}"}
        who = {**staff, "X-Chat-Channel": "rest", "X-Chat-User": sender}
        base = stack.signing_url
        async with aiohttp.ClientSession() as http:
            since = time.time()
            body = {"request_code": "PC05TK0000123", "channel": "sms"}
            async with http.post(f"{base}/v1/verifications", json=body, headers=who) as r:
                challenge = await r.json()
            otp = latest_otp(stack.outbox, since)
            async with http.post(
                f"{base}/v1/verifications/{challenge['challenge_id']}/verify", json={"otp": otp}, headers=who
            ) as r:
                assert r.status == 200, await r.text()
            async with http.post(f"{base}/v1/requests/PC05TK0000123/notifications", headers=who) as r:
                assert r.status == 200
            async with http.post(f"{base}/v1/requests/PC05TK0000123/advance", headers=staff) as r:
                assert r.status == 200

            async def sent():
                url = f"{base}/v1/notifications?chat_channel=rest&chat_user={sender}"
                async with http.get(url, headers=staff) as r:
                    notices = (await r.json())["notices"]
                return notices and notices[0]["state"] == "sent"

            await wait_for(sent, 30, "the notice sent")
    finally:
        notifier.stop()
    client = await start_desk(desk_factory, tmp_path, rasa_env)
    await rasa.say(sender, "xin chào")
    await rasa.ask_for_human(sender, code="PC05TK0000123")
    handoff = await queued(client, sender)
    await login(client, "lan")
    page = await (await client.get(f"/conversations/{handoff.id}")).text()
    section = page[page.index('id="notices"') :]
    assert "Thông báo tự động cho khách (1)" in section
    assert "Chuyển bước" in section and "SMS" in section and "Đã gửi" in section
