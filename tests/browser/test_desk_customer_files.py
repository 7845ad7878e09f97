"""In Debian's chromium: a customer's Zalo photos show as images in the conversation page, the one
already in the tracker (rendered by the template) and one arriving while the page is open (rendered
by desk.js from the event stream), both loaded through the desk's customer-files route under the
page's CSP (agent_desk/customer_file_views.py).

The desk runs as a real process; Rasa's HTTP API and Zalo's CDN are a small fake in a thread; Rasa's
events reach the desk through the SQLite event table it follows (RASA_EVENTS_DB). No model needed.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from devstack import processes
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, add_desk_accounts, login, wait_until_true
from tests.connectors.fakes import _ThreadedServer

SENDER = "zalo:6142000000950"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def png(width: int, height: int) -> bytes:
    """A real, decodable RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x1f\x6f\xb4" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class FakeBackends(_ThreadedServer):
    """Rasa's tracker API (events as set), the signing service's notices, and a CDN serving photos."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.photos = {"first.png": png(16, 12), "live.png": png(24, 10)}

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        app.router.add_get("/v1/notifications", self._notices)
        app.router.add_get("/cdn/{name}", self._photo)
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        with self.lock:
            events = list(self.events)
        return web.json_response({"sender_id": request.match_info["sender"], "events": events})

    async def _append(self, request: web.Request) -> web.Response:
        return web.json_response({"sender_id": request.match_info["sender"]})

    async def _notices(self, request: web.Request) -> web.Response:
        return web.json_response({"notices": []})

    async def _photo(self, request: web.Request) -> web.Response:
        data = self.photos.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")


def publish(db: Path, events: list[dict[str, Any]]) -> None:
    """As Rasa's SQL event broker: one row per event."""
    conn = sqlite3.connect(db)
    try:
        conn.executemany(
            "INSERT INTO events (sender_id, data) VALUES (?, ?)", [(SENDER, json.dumps(e)) for e in events]
        )
        conn.commit()
    finally:
        conn.close()


def photo_event(fake: FakeBackends, name: str, ts: float) -> dict[str, Any]:
    return {
        "sender_id": SENDER,
        "event": "user",
        "text": "/out_of_scope",
        "timestamp": ts,
        "input_channel": "zalo",
        "metadata": {"customer_file": {"kind": "image", "url": f"{fake.url}/cdn/{name}"}},
    }


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[str, FakeBackends, Path]]:
    root = Path(tempfile.mkdtemp(prefix="desk-customer-files-"))
    events_db = root / "rasa_events.db"
    conn = sqlite3.connect(events_db)
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sender_id TEXT, data TEXT)")
    conn.commit()
    conn.close()
    with FakeBackends() as fake:
        ports = processes.Ports(desk=processes.free_port())
        env = processes.stack_env(
            ports,
            {
                "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}",
                "RASA_EVENTS_DB": str(events_db),
                "DESK_BROKER_POLL_INTERVAL": "0.1",
                "RASA_URL": fake.url,
                "SIGNING_SERVICE_URL": fake.url,
                "BOT_FAILURES_URL": f"sqlite:///{root / 'bot_failures.db'}",
                "HANDOFF_QUEUE_TIMEOUT": "3600",
                "DESK_CUSTOMER_FILE_HOSTS": "127.0.0.1",
            },
        )
        add_desk_accounts(env, ("lan", "agent", "Lan"))
        proc = processes.agent_desk(ports, env, root / "log")
        proc.start()
        try:
            proc.wait_healthy(60)
            yield f"http://127.0.0.1:{ports.desk}", fake, events_db
        finally:
            proc.stop()


def test_a_customers_photo_shows_as_an_image_also_when_it_arrives_live(world) -> None:
    from playwright.sync_api import expect, sync_playwright

    desk, fake, events_db = world
    now = time.time() - 30
    request = [
        {
            "sender_id": SENDER,
            "event": "user",
            "text": "gặp nhân viên",
            "timestamp": now,
            "input_channel": "zalo",
        },
        {"sender_id": SENDER, "event": "action", "timestamp": now + 0.1, "name": "action_request_handoff"},
    ]
    first = photo_event(fake, "first.png", now + 1)
    with fake.lock:
        fake.events[:] = [*request, first]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN").new_page()
            blocked: list[str] = []
            page.on(
                "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
            )
            login(page, desk, "lan")
            time.sleep(1)  # the desk has read its event table's start
            publish(events_db, [*request, first])
            row = page.locator("#waiting tbody tr[data-id]")
            expect(row).to_have_count(1, timeout=30_000)
            row.get_by_role("button", name="Nhận xử lý").click()
            page.wait_for_url(re.compile(r"/conversations/\d+$"))

            thumbs = page.locator("#transcript img.customer-thumb")
            expect(thumbs).to_have_count(1)
            wait_until_true(
                page,
                "() => { const i = document.querySelector('#transcript img.customer-thumb');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=15,
            )
            assert thumbs.first.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [16, 12]
            assert re.search(
                r"/conversations/\d+/customer-files/[0-9a-f]{32}$", thumbs.first.get_attribute("src") or ""
            )
            assert thumbs.first.get_attribute("loading") == "lazy"
            expect(page.locator("#transcript a.customer-file-link").first).to_have_text("Mở ảnh cỡ đầy đủ")

            # A second photo while the page is open: desk.js renders it from the event stream.
            live = photo_event(fake, "live.png", time.time())
            with fake.lock:
                fake.events.append(live)
            publish(events_db, [live])
            expect(thumbs).to_have_count(2, timeout=15_000)
            wait_until_true(
                page,
                "() => { const l = document.querySelectorAll('#transcript img.customer-thumb');"
                " return l.length === 2 && l[1].complete && l[1].naturalWidth > 0; }",
                timeout=15,
            )
            assert thumbs.nth(1).evaluate("i => [i.naturalWidth, i.naturalHeight]") == [24, 10]
            assert not blocked, blocked
        finally:
            browser.close()
