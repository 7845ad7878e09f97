"""Issue 18, "what trying it as an agent showed", server side: the queue warns before a request times
out and lists today's timed-out customers with a "Gọi lại" marker; every error a browser gets is the
desk's own Vietnamese page (JSON callers keep JSON); the /demo chat can reload its history.

No Rasa: the handoffs are written straight into the database, the demo's Rasa is a small fake."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from agent_desk import db, ux
from agent_desk.keys import DESK
from tests.desk.conftest import add_account, desk_settings, login


async def insert(client, **values: Any) -> int:
    now = time.time()
    row = {
        "sender_id": f"zalo:{values.pop('sender', 'x')}",
        "channel": "zalo",
        "status": "waiting",
        "requested_at": now,
        "queued_at": now,
        "last_messages": "[]",
        "requeue_count": 0,
        **values,
    }
    async with client.app[DESK].engine.begin() as conn:
        result = await conn.execute(db.handoffs.insert().values(**row))
    return int(result.inserted_primary_key[0])


async def test_queue_warns_in_the_last_minute_and_keeps_timed_out_customers_for_a_call_back(
    desk_factory,
):
    client = await desk_factory(background=False)
    await add_account(client, "lan", name="Lan")
    token = await login(client, "lan")
    now = time.time()
    fresh = await insert(client, sender="1", queued_at=now - 30)
    late = await insert(client, sender="2", queued_at=now - 275)  # 300 s timeout: 25 s left
    gone = await insert(
        client, sender="3", status="timed_out", request_code="PC05TK0000123", closed_at=now - 60
    )
    yesterday = await insert(client, sender="4", status="timed_out", closed_at=now - 2 * 86400)

    page = await (await client.get("/")).text()
    assert 'data-queue-timeout="300' in page
    rows = {int(part.split('"')[0]): part for part in page.split('<tr data-id="')[1:]}
    assert "expiring" not in rows[fresh].split(">")[0]
    assert 'class="expiring expiring-soon"' in rows[late].split(">")[0]
    assert "còn 2" in rows[late] and "giây</span>" in rows[late]
    assert "Khách chưa được hỗ trợ" in page
    assert gone in rows and yesterday not in rows  # today only (Vietnamese day)
    assert "PC05TK0000123" in rows[gone] and "Gọi lại</button>" in rows[gone]

    resp = await client.post(f"/timeouts/{gone}/callback", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/#timed-out"
    page = await (await client.get("/")).text()
    row = page.split(f'<tr data-id="{gone}"')[1].split("</tr>")[0]
    assert "called-back" in row and "Đã gọi lại" in row and "Lan" in row
    assert "Gọi lại</button>" not in row
    async with client.app[DESK].engine.connect() as conn:
        marker = (await conn.execute(sa.select(ux.callbacks))).one()
    assert marker.handoff_id == gone and marker.agent_name == "Lan"
    assert abs(marker.called_at - time.time()) < 30

    # A second press keeps the first marker; a handoff that did not time out has none to set.
    resp = await client.post(f"/timeouts/{gone}/callback", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    resp = await client.post(f"/timeouts/{late}/callback", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 404 and "Không tìm thấy" in await resp.text()
    listed = await ux.timed_out_today(client.app[DESK])
    assert [r["id"] for r in listed] == [gone] and listed[0]["called_by"] == "Lan"

    # The live queue carries what the page needs for the countdown and the alerts.
    snap = await (await client.get("/api/queue")).json()
    assert snap["queue_timeout"] == 300 and "customer_last_at" in snap["waiting"][0]


def _in_layout(html: str) -> bool:
    return 'class="topbar"' in html and "Bàn trực CSKH" in html and "<html" in html


async def test_browser_errors_are_the_desks_own_pages_and_json_callers_keep_json(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", name="Lan")
    token = await login(client, "lan")

    resp = await client.get("/supervisor")  # an agent on a supervisor's page
    html = await resp.text()
    assert resp.status == 403 and resp.content_type == "text/html"
    assert _in_layout(html) and "chỉ dành cho giám sát viên" in html
    resp = await client.get("/api/supervisor")
    assert resp.status == 403 and (await resp.json())["error"] == "forbidden"

    for path in ("/khong-co-trang-nay", "/conversations/999999"):
        resp = await client.get(path)
        html = await resp.text()
        assert resp.status == 404 and resp.content_type == "text/html", path
        assert _in_layout(html) and "Không tìm thấy" in html, path
    resp = await client.get("/conversations/999999", headers={"Accept": "application/json"})
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"

    resp = await client.get("/logout")  # POST only
    html = await resp.text()
    assert resp.status == 405 and resp.content_type == "text/html"
    assert _in_layout(html) and "phương thức" in html
    resp = await client.get("/logout", headers={"Accept": "application/json"})
    assert resp.status == 405 and (await resp.json())["error"] == "method_not_allowed"

    handoff = await insert(client, sender="9")
    resp = await client.post(
        f"/conversations/{handoff}/notes",
        data={"csrf_token": token, "text": "x" * 100_000},
    )
    html = await resp.text()
    assert resp.status == 413 and resp.content_type == "text/html"
    assert _in_layout(html) and "quá lớn" in html
    resp = await client.post("/api/supervisor", headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"})
    assert resp.status == 405 and resp.content_type == "application/json"


async def test_demo_chat_gets_the_conversation_so_far_after_a_reload(aiohttp_server, desk_factory, tmp_path):
    events = [
        {"event": "action", "name": "action_listen", "timestamp": 1.0},
        {"event": "user", "text": "xin chào", "timestamp": 2.0},
        {
            "event": "bot",
            "text": "Chào anh/chị, em giúp gì được ạ?",
            "timestamp": 3.0,
            "data": {"buttons": [{"title": "Tra cứu yêu cầu", "payload": "/lookup"}]},
        },
        {"event": "user", "text": "/lookup", "timestamp": 4.0},
        {"event": "bot", "text": "Anh/chị cho em xin mã yêu cầu ạ.", "timestamp": 5.0},
    ]
    asked: list[str] = []

    async def tracker(request: web.Request) -> web.Response:
        asked.append(request.match_info["sender"])
        return web.json_response({"sender_id": request.match_info["sender"], "events": events})

    rasa = web.Application()
    rasa.router.add_get("/conversations/{sender}/tracker", tracker)
    server = await aiohttp_server(rasa)
    settings = desk_settings(tmp_path, env={"RASA_URL": str(server.make_url("")).rstrip("/")})
    client = await desk_factory(settings, background=False)
    await client.get("/demo")  # sets the visitor's conversation cookie

    resp = await client.get("/demo/api/messages?after=0&history=1")
    data = await resp.json()
    assert resp.status == 200
    assert [(m["kind"], m["text"]) for m in data["messages"]] == [
        ("user", "xin chào"),
        ("bot", "Chào anh/chị, em giúp gì được ạ?"),
        ("user", "Tra cứu yêu cầu"),  # the button's title, not its payload
        ("bot", "Anh/chị cho em xin mã yêu cầu ạ."),
    ]
    assert data["messages"][1]["buttons"][0]["payload"] == "/lookup"
    assert data["cursor"] == len(events) and data["version"]
    assert asked and asked[0].startswith("demo-")

    # Without history=1 the poll is unchanged: the visitor's own lines are not sent back.
    data = await (await client.get("/demo/api/messages?after=0")).json()
    assert [m["text"] for m in data["messages"]] == [events[2]["text"], events[4]["text"]]
    assert ux.day_start(time.time()) <= time.time()


async def test_supervisor_figures_come_as_json_for_the_live_page(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "hung", role="supervisor", name="Hùng")
    await login(client, "hung")
    now = time.time()
    await insert(client, sender="1", queued_at=now - 90)
    await insert(client, sender="2", status="timed_out", closed_at=now - 10)

    page = await (await client.get("/supervisor")).text()
    for element in ("kpi-queue", "kpi-longest", "kpi-average", "kpi-active", "kpi-closed"):
        assert f'id="{element}"' in page
    for element in ("kpi-timed-out", "kpi-handling", "sup-agents", "sup-open", "sup-updated"):
        assert f'id="{element}"' in page
    data = await (await client.get("/api/supervisor")).json()
    assert data["queue_length"] == 1 and data["timed_out_today"] == 1
    assert abs(data["now"] - time.time()) < 30 and data["longest_wait"] >= 89
    assert [h["status"] for h in data["open"]] == ["waiting"]
    assert {a["username"] for a in data["agents"]} == {"hung"}
    # desk.js refreshes these in place from that JSON instead of reloading the page.
    script = (Path(__file__).parents[2] / "agent_desk/static/desk.js").read_text()
    assert 'fetch("/api/supervisor"' in script and "setInterval(refreshSupervisor" in script
