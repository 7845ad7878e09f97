"""In Debian's chromium: an agent changes her status in the header, takes a conversation and transfers
it with a note to a colleague, who is told at once and finds the note in the conversation. Issue 18.

The desk runs as a real process following a SQLite events table this test writes (as Rasa's tracker
store would); Rasa's HTTP API and the signing service are a small fake in a thread (no model needed).
The screenshot lands in docs/img/desk-assignment.png with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from devstack import processes
from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    add_desk_accounts,
    login,
    screenshots_dir,
    wait_until_true,
)
from tests.connectors.fakes import _ThreadedServer

ROOT = processes.ROOT
SENDER = "512300777"
ASKED = "Cho tôi hỏi hóa đơn tiền điện tháng 5 sao cao vậy?"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


class FakeBackends(_ThreadedServer):
    """Rasa's HTTP API (the tracker: what the events table says plus what the desk appended) and the
    signing service's notices, on one port."""

    def __init__(self) -> None:
        super().__init__()
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        app.router.add_get("/v1/notifications", lambda _: web.json_response({"notices": []}))
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        return web.json_response(
            {"sender_id": sender, "events": self.events[sender], "latest_input_channel": "telegram"}
        )

    async def _append(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.lock:
            self.events[request.match_info["sender"]].extend(body)
        return web.json_response({"sender_id": request.match_info["sender"]})


def customer_asks_for_a_human(events_db: Path, fake: FakeBackends) -> None:
    now = time.time()
    events = [
        {"event": "user", "text": ASKED, "timestamp": now, "input_channel": "telegram"},
        {"event": "bot", "text": "Em chuyển anh/chị tới nhân viên tổng đài ạ.", "timestamp": now + 0.1},
        {"event": "action", "name": "action_request_handoff", "timestamp": now + 0.2},
        {"event": "slot", "name": "handoff_requested", "value": True, "timestamp": now + 0.3},
    ]
    with fake.lock:
        fake.events[SENDER].extend(events)
    with sqlite3.connect(events_db) as conn:
        conn.executemany(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)",
            [(SENDER, json.dumps({**e, "sender_id": SENDER})) for e in events],
        )


@pytest.fixture(scope="module")
def desk() -> Iterator[tuple[str, Path, FakeBackends]]:
    root = Path(tempfile.mkdtemp(prefix="desk-assignment-"))
    events_db = root / "rasa_events.db"
    with sqlite3.connect(events_db) as conn:  # empty: the desk follows it from the start
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
    with FakeBackends() as fake:
        ports = processes.Ports(desk=processes.free_port())
        env = processes.stack_env(
            ports,
            {
                "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}",
                "RASA_EVENTS_DB": str(events_db),
                "RASA_URL": fake.url,
                "SIGNING_SERVICE_URL": fake.url,
                "BOT_FAILURES_URL": f"sqlite:///{root / 'bot_failures.db'}",
                "DESK_BROKER_POLL_INTERVAL": "0.2",
                "DESK_SWEEP_INTERVAL": "1",
                "HANDOFF_QUEUE_TIMEOUT": "3600",
            },
        )
        add_desk_accounts(
            env, ("lan", "agent", "Lan"), ("minh", "agent", "Minh"), ("hung", "supervisor", "Hùng")
        )
        proc = processes.agent_desk(ports, env, root / "log")
        proc.start()
        try:
            proc.wait_healthy(60)
            yield f"http://127.0.0.1:{ports.desk}", events_db, fake
        finally:
            proc.stop()


def test_status_selector_and_a_transfer_with_a_note(desk) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, events_db, fake = desk
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            minh = browser.new_context(viewport={"width": 1366, "height": 800}, locale="vi-VN").new_page()
            login(minh, base, "minh")
            status = minh.locator("#presence-status")
            expect(status).to_have_value("available")
            expect(minh.locator("#presence-save")).to_be_hidden()  # saved on change
            status.select_option("busy")
            minh.wait_for_load_state()
            expect(minh.locator("#presence-status")).to_have_value("busy", timeout=10_000)
            minh.reload()
            expect(minh.locator("#presence-status")).to_have_value("busy")

            lan = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN").new_page()
            login(lan, base, "lan")
            customer_asks_for_a_human(events_db, fake)
            row = lan.locator("#waiting tbody tr[data-id]").first
            row.wait_for(timeout=30_000)
            row.get_by_role("button", name="Nhận xử lý").click()
            lan.wait_for_url(re.compile(r"/conversations/\d+$"))
            handoff_url = lan.url
            expect(lan.locator("#transcript")).to_contain_text(ASKED)

            card = lan.locator("#transfer")
            expect(card.locator("#transfer-to")).to_contain_text("Minh (bận, đang xử lý 0)")
            card.locator("#transfer-to").select_option(label="Minh (bận, đang xử lý 0)")
            note = "Khách hỏi hóa đơn tháng 5 cao; em đã gửi chỉ số công tơ, nhờ anh kiểm tra giúp."
            card.locator("#transfer-note").fill(note)
            lan.screenshot(path=str(screenshots_dir() / "desk-assignment.png"), full_page=True)

            # Minh is on the queue page when it comes, its event stream connected.
            minh.goto(base + "/")
            wait_until_true(minh, "window.deskEvents && window.deskEvents.readyState === 1")
            minh.wait_for_timeout(500)
            card.locator("#transfer-button").click()
            lan.wait_for_url(base + "/")
            notice = minh.locator(".assign-notice")
            expect(notice).to_be_visible(timeout=10_000)
            expect(notice).to_contain_text("Bạn vừa được giao hội thoại")
            expect(notice).to_contain_text("Lan chuyển cho bạn")
            expect(notice).to_contain_text(note)

            notice.get_by_role("link").click()
            minh.wait_for_url(handoff_url)
            expect(minh.locator("#reply-form")).to_be_visible()
            notes = minh.locator("#notes")
            expect(notes).to_contain_text("chuyển cho Minh")
            expect(notes).to_contain_text(note)
            expect(minh.locator("#transcript")).to_contain_text("Minh")  # the customer was told

            supervisor = browser.new_context(
                viewport={"width": 1366, "height": 800}, locale="vi-VN"
            ).new_page()
            login(supervisor, base, "hung")
            supervisor.goto(base + "/supervisor")
            table = supervisor.locator("#presence-table")
            expect(table.locator('tr[data-agent="minh"]')).to_contain_text("Bận")
            expect(table.locator('tr[data-agent="minh"]')).to_contain_text("1")
            expect(table.locator('tr[data-agent="lan"]')).to_contain_text("Sẵn sàng")
        finally:
            browser.close()
