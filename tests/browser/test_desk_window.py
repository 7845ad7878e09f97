"""In Debian's chromium: two Zalo messages the bot failed on reach the queue flagged "bot lỗi"; on one the
Zalo window is about to end (the time left counts down, with a warning), on the other it is over (the
reply box is "Gửi SMS"). Issue 18.

The desk runs as a real process; Rasa and the signing service are small fakes in threads (no model
needed). The screenshot lands in docs/img/desk-window.png with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from connectors.common import bot_failures as store
from devstack import processes
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, add_desk_accounts, login, screenshots_dir
from tests.connectors.fakes import _ThreadedServer

ROOT = processes.ROOT
HOUR = 3600.0
NEAR = "zalo:6142000000901"
OVER = "zalo:6142000000902"

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


class FakeBackends(_ThreadedServer):
    """Rasa's HTTP API (trackers with the customers' last messages, appends accepted) and the signing
    service's notices, on one port."""

    def __init__(self, last: dict[str, tuple[float, str]]) -> None:
        super().__init__()
        self.last = last

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        app.router.add_get("/v1/notifications", self._notices)
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        events: list[dict[str, Any]] = []
        if sender in self.last:
            at, text = self.last[sender]
            events.append({"event": "user", "text": text, "timestamp": at, "input_channel": "zalo"})
        return web.json_response({"sender_id": sender, "events": events, "latest_input_channel": "zalo"})

    async def _append(self, request: web.Request) -> web.Response:
        return web.json_response({"sender_id": request.match_info["sender"]})

    async def _notices(self, request: web.Request) -> web.Response:
        return web.json_response({"notices": []})


@pytest.fixture(scope="module")
def desk() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="desk-window-"))
    now = time.time()
    last = {
        NEAR: (now - 47.5 * HOUR, "Tôi cần hỗ trợ ký hợp đồng mua bán điện"),
        OVER: (now - 49 * HOUR, "Alo, có ai hỗ trợ không?"),
    }
    url = f"sqlite:///{root / 'bot_failures.db'}"
    failures = store.FailureStore(url)
    for n, (sender, (at, text)) in enumerate(last.items()):
        failures.add(
            store.BotFailure(f"zalo:m-{n}", at, "zalo", sender, "rasa_error", "ConnectionError", text)
        )
    with FakeBackends(last) as fake:
        ports = processes.Ports(desk=processes.free_port())
        env = processes.stack_env(
            ports,
            {
                "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}",
                "RASA_EVENTS_DB": str(root / "rasa_events.db"),
                "RASA_URL": fake.url,
                "SIGNING_SERVICE_URL": fake.url,
                "BOT_FAILURES_URL": url,
                "DESK_BOT_FAILURES_POLL_INTERVAL": "0.2",
                "HANDOFF_QUEUE_TIMEOUT": "3600",
            },
        )
        add_desk_accounts(env, ("lan", "agent", "Lan"))
        proc = processes.agent_desk(ports, env, root / "log")
        proc.start()
        try:
            proc.wait_healthy(60)
            yield f"http://127.0.0.1:{ports.desk}"
        finally:
            proc.stop()


def test_the_zalo_window_counts_down_warns_and_ends_in_sms(desk: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN").new_page()
            login(page, desk, "lan")
            rows = page.locator("#waiting tbody tr[data-id]")
            expect(rows).to_have_count(2, timeout=30_000)
            expect(rows.first).to_contain_text("bot lỗi")

            near = page.locator("#waiting tbody tr", has_text="ký hợp đồng mua bán điện")
            near.get_by_role("button", name="Nhận xử lý").click()
            page.wait_for_url(re.compile(r"/conversations/\d+$"))
            banner = page.locator("#window-banner")
            expect(banner).to_have_class(re.compile("window-warning"))
            expect(banner).to_contain_text("sắp hết")
            expect(page.locator("#bot-failures")).to_contain_text("Tôi cần hỗ trợ ký hợp đồng")
            left = page.locator("#window-left")
            first = left.inner_text()
            assert re.fullmatch(r"(29|30) phút \d\d giây", first), first
            expect(left).not_to_have_text(first, timeout=5_000)  # counting down in the page
            expect(page.locator("#reply-form")).to_be_visible()
            page.screenshot(path=str(screenshots_dir() / "desk-window.png"), full_page=True)

            page.goto(desk + "/")
            over = page.locator("#waiting tbody tr", has_text="có ai hỗ trợ")
            over.get_by_role("button", name="Nhận xử lý").click()
            page.wait_for_url(re.compile(r"/conversations/\d+$"))
            expect(page.locator("#window-banner")).to_have_class(re.compile("window-closed"))
            expect(page.locator("#sms-form")).to_be_visible()
            expect(page.locator("#reply-form")).to_have_count(0)
        finally:
            browser.close()
