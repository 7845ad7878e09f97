"""Channel windows (issue 18): a Zalo conversation shows the time left in Zalo's 48-hour window, warns
near its end, and after it refuses plain replies (never silently into the failures file) and offers an
SMS to the request's registered phone through the signing service. Telegram has no window.

Rasa and the signing service are small fakes here that record what the desk asks of them.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from aiohttp import web

from agent_desk import channel_window
from agent_desk.config import ConfigError
from agent_desk.keys import DESK
from tests.desk.conftest import add_account, desk_settings, login
from tests.desk.test_resilience import request_events

HOUR = 3600.0
CODE = "PC05TK0000123"


class FakeRasa:
    """Trackers with one customer message each (as set), and every append with its query."""

    def __init__(self) -> None:
        self.last_user: dict[str, float] = {}
        self.appended: list[tuple[str, list[dict[str, Any]], dict[str, str]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        events: list[dict[str, Any]] = []
        if sender in self.last_user:
            events.append({"event": "user", "text": "xin chào", "timestamp": self.last_user[sender]})
        channel = sender.split(":")[0] if ":" in sender else "rest"
        return web.json_response(
            {"sender_id": sender, "events": events, "latest_input_channel": channel, "slots": {}}
        )

    async def _append(self, request: web.Request) -> web.Response:
        self.appended.append((request.match_info["sender"], await request.json(), dict(request.query)))
        return web.json_response({"sender_id": request.match_info["sender"]})

    def bot_lines(self, sender: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
        return [
            (e, q) for s, events, q in self.appended if s == sender for e in events if e["event"] == "bot"
        ]


class FakeSigning:
    def __init__(self) -> None:
        self.sms: list[tuple[str, dict[str, Any]]] = []
        self.refuse: tuple[int, dict[str, Any]] | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/requests/{code}/staff-sms", self._sms)
        app.router.add_get("/v1/notifications", lambda r: web.json_response({"notices": []}))
        return app

    async def _sms(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"].startswith("Bearer ")
        if self.refuse:
            return web.json_response(self.refuse[1], status=self.refuse[0])
        self.sms.append((request.match_info["code"], await request.json()))
        return web.json_response({"sent": True, "to": "090****567"})


@pytest.fixture
async def world(aiohttp_server, desk_factory, tmp_path):
    rasa, signing = FakeRasa(), FakeSigning()
    rasa_server = await aiohttp_server(rasa.app())
    signing_server = await aiohttp_server(signing.app())
    settings = desk_settings(
        tmp_path,
        env={
            "RASA_URL": str(rasa_server.make_url("")).rstrip("/"),
            "SIGNING_SERVICE_URL": str(signing_server.make_url("")).rstrip("/"),
        },
    )
    client = await desk_factory(settings, background=False)
    await add_account(client, "lan", name="Lan")
    token = await login(client, "lan")
    return client, rasa, signing, token


async def queued(client, rasa: FakeRasa, sender: str, last_message_at: float, code: str | None = CODE) -> int:
    """A handoff requested with the customer's last message at `last_message_at`, claimed by Lan."""
    desk = client.app[DESK]
    rasa.last_user[sender] = last_message_at
    if code:
        await desk.ingest({"sender_id": sender, "event": "slot", "name": "request_code", "value": code})
    for e in request_events(sender, last_message_at):
        e["input_channel"] = sender.split(":")[0] if e["event"] == "user" else None
        await desk.ingest(e)
    handoff = next(h for h in await desk.open_handoffs() if h.sender_id == sender)
    return handoff.id


async def claim(client, handoff_id: int, token: str) -> None:
    resp = await client.post(
        f"/conversations/{handoff_id}/claim", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()


async def reply(client, handoff_id: int, token: str, text: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post(
        f"/conversations/{handoff_id}/reply",
        json={"text": text},
        headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
    )
    return resp.status, await resp.json()


async def test_after_the_window_replies_are_refused_and_an_sms_goes_instead(world):
    client, rasa, signing, token = world
    sender = "zalo:6142000000801"
    handoff_id = await queued(client, rasa, sender, time.time() - 49 * HOUR)
    await claim(client, handoff_id, token)
    # The "agent joined" line is written into the conversation but not pushed to Zalo (it would fail).
    [(joined, query)] = rasa.bot_lines(sender)
    assert joined["metadata"]["utter_action"] == "utter_handoff_agent_joined"
    assert "output_channel" not in query

    page = await (await client.get(f"/conversations/{handoff_id}")).text()
    assert (
        'id="window-banner"' in page and "window-closed" in page and "Đã hết thời hạn nhắn tin Zalo" in page
    )
    assert 'id="sms-form"' in page and 'id="reply-form"' not in page

    status, body = await reply(client, handoff_id, token, "Dạ em chào anh/chị")
    assert status == 409
    assert "48 giờ" in body["message"] and "Gửi SMS" in body["message"]
    assert len(rasa.bot_lines(sender)) == 1  # nothing sent, nothing into the failures file

    text = "Dạ, hồ sơ của anh/chị đã có kết quả, anh/chị vui lòng nhắn lại Zalo để em hỗ trợ ạ."
    resp = await client.post(
        f"/conversations/{handoff_id}/sms", data={"text": text, "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert signing.sms == [(CODE, {"text": text, "by": "lan", "chat_channel": "zalo", "chat_user": sender})]
    line, query = rasa.bot_lines(sender)[-1]
    assert (
        line["text"] == text and line["metadata"]["via"] == "sms" and line["metadata"]["agent_name"] == "Lan"
    )
    assert "output_channel" not in query  # the transcript's copy only

    # Too long, or refused by the signing service (not verified): a clear message, nothing sent.
    resp = await client.post(
        f"/conversations/{handoff_id}/sms", data={"text": "x" * 301, "csrf_token": token}
    )
    assert resp.status == 400 and "tối đa 300" in await resp.text()
    signing.refuse = (403, {"error": "not_verified", "message": "Khách chưa xác minh là chủ hồ sơ."})
    resp = await client.post(
        f"/conversations/{handoff_id}/sms",
        json={"text": "Dạ"},
        headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 409
    assert (await resp.json())["message"] == "SMS chưa được gửi: Khách chưa xác minh là chủ hồ sơ."
    assert len(signing.sms) == 1


async def test_inside_the_window_the_time_left_is_shown_with_a_warning_near_the_end(world):
    client, rasa, signing, token = world
    sender = "zalo:6142000000802"
    last = time.time() - 47 * HOUR  # one hour left, warned from two
    handoff_id = await queued(client, rasa, sender, last)
    await claim(client, handoff_id, token)
    page = await (await client.get(f"/conversations/{handoff_id}")).text()
    banner = re.search(r'<div class="window-banner[^"]*"[^>]*>', page)
    assert banner is not None and "window-warning" in banner.group(0)
    ends = float(re.search(r'data-ends="([0-9.]+)"', banner.group(0)).group(1))
    assert abs(ends - (last + 48 * HOUR)) < 1
    assert 'id="window-left"' in page and "sắp hết" in page
    assert 'id="reply-form"' in page and 'id="sms-form"' not in page
    assert (await reply(client, handoff_id, token, "Dạ em nghe ạ"))[0] == 200
    _, query = rasa.bot_lines(sender)[-1]
    assert query["output_channel"] == "latest"  # pushed to Zalo
    # An SMS is for after the window only.
    resp = await client.post(
        f"/conversations/{handoff_id}/sms",
        json={"text": "Dạ"},
        headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
    )
    assert resp.status == 409 and signing.sms == []


async def test_a_customer_message_the_desk_missed_reopens_the_window(world):
    client, rasa, _, token = world
    sender = "zalo:6142000000803"
    handoff_id = await queued(client, rasa, sender, time.time() - 60 * HOUR)
    await claim(client, handoff_id, token)
    rasa.last_user[sender] = time.time() - 60  # Rasa has a newer message than the desk's record
    assert (await reply(client, handoff_id, token, "Dạ em chào anh/chị"))[0] == 200


async def test_telegram_has_no_window(world):
    client, rasa, _, token = world
    sender = "telegram:700000804"
    handoff_id = await queued(client, rasa, sender, time.time() - 100 * HOUR)
    await claim(client, handoff_id, token)
    page = await (await client.get(f"/conversations/{handoff_id}")).text()
    assert 'id="window-banner"' not in page and 'id="reply-form"' in page
    assert (await reply(client, handoff_id, token, "Dạ em chào anh/chị"))[0] == 200
    _, query = rasa.bot_lines(sender)[-1]
    assert query["output_channel"] == "latest"


def test_window_arithmetic_and_settings(tmp_path):
    settings = desk_settings(tmp_path, env={"ZALO_WINDOW_HOURS": "24", "DESK_WINDOW_WARN_MINUTES": "30"})
    w = channel_window.window(settings, "zalo", 1000.0, now=1000.0 + 24 * HOUR - 29 * 60)
    assert w is not None and w.warning and not w.closed and w.left == 29 * 60
    closed = channel_window.window(settings, "zalo", 1000.0, now=1000.0 + 24 * HOUR)
    assert closed is not None and closed.closed and closed.left == 0
    assert channel_window.window(settings, "telegram", 1000.0) is None
    assert channel_window.window(settings, "rest", None) is None
    for bad in ({"ZALO_WINDOW_HOURS": "0"}, {"ZALO_WINDOW_HOURS": "200"}, {"DESK_WINDOW_WARN_MINUTES": "x"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            desk_settings(tmp_path, env=bad)
