"""Search in Debian's chromium: an agent types a name in the search box, sees the conversation with
the customer masked, opens it and finds the customer's earlier conversation listed.

The desk runs as a real process on a database seeded beforehand (no Rasa or signing service: the
conversation page says it cannot load them, which this test does not look at). The screenshot goes
to docs/img/desk-search.png with UPDATE_SCREENSHOTS=1, else to a temporary directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from agent_desk import accounts, db
from agent_desk.config import async_db_url
from agent_desk.customer_index import customer_fields
from agent_desk.desk import VN_TZ
from devstack import processes
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, PASSWORD

ROOT = processes.ROOT
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

# (chat user, channel, code, masked name, masked phone, day, tag)
CONVERSATIONS = [
    ("zalo-1001", "zalo", "PC05TK0000123", "Nguyễn V** A*", "090****567", "14/11/2025", "info_provided"),
    ("zalo-1002", "zalo", "PC05TK0000130", "Trần T** B***", "091****222", "20/11/2025", "resolved"),
    ("tg-2001", "telegram", "PC05HA0000456", "Nguyễn T** H***", "098****111", "28/11/2025", "escalated"),
    ("zalo-1001", "zalo", "PC05TK0000123", "Nguyễn V** A*", "090****567", "03/12/2025", "resolved"),
    ("rest-3001", "rest", "PC01HN0000789", "Lê M*** T***", "035****909", "05/12/2025", "customer_left"),
    ("tg-2002", "telegram", "PC05TK0000124", "Nguyễn V** A**", "097****567", "08/12/2025", "resolved"),
]


async def seed(url: str) -> None:
    engine = db.make_engine(async_db_url(url))
    try:
        await db.create_schema(engine)
        await accounts.create(engine, "lan", PASSWORD, "agent", "Lan")
        async with engine.begin() as conn:
            for sender, channel, code, name, phone, day, tag in CONVERSATIONS:
                d, m, y = (int(x) for x in day.split("/"))
                at = datetime(y, m, d, 9, 30, tzinfo=VN_TZ).timestamp()
                await conn.execute(
                    db.handoffs.insert().values(
                        sender_id=sender,
                        channel=channel,
                        status="closed",
                        request_code=code,
                        requested_at=at,
                        queued_at=at,
                        claimed_at=at + 40,
                        agent_id=1,
                        closed_at=at + 600,
                        close_tag=tag,
                        last_messages="[]",
                        requeue_count=0,
                        customer_code=code,
                        **customer_fields({"customer": {"name_masked": name, "phone_masked": phone}}),
                    )
                )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("desk-search")
    url = f"sqlite:///{root / 'desk.db'}"
    asyncio.run(seed(url))
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {
            "DESK_DATABASE_URL": url,
            "RASA_URL": "http://127.0.0.1:9",  # nothing listens: the page says so
            "SIGNING_SERVICE_URL": "http://127.0.0.1:9",
            "RASA_EVENTS_DB": str(root / "rasa_events.db"),
        },
    )
    proc = processes.agent_desk(ports, env, root / "log")
    proc.start()
    try:
        proc.wait_healthy(60)
        yield f"http://127.0.0.1:{ports.desk}"
    finally:
        proc.stop()


def test_search_box_finds_a_customer_and_their_history(desk: str, shots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="vi-VN")
            page.goto(f"{desk}/login")
            page.fill("input[name=username]", "lan")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{desk}/")

            page.click("nav >> text=Tìm kiếm")
            page.wait_for_url(f"{desk}/search")
            page.fill("#search-q", "nguyen van an")  # typed without diacritics
            page.press("#search-q", "Enter")
            results = page.locator("#search-results tbody tr")
            expect(results).to_have_count(2)
            expect(results.first).to_contain_text("Nguyễn V** A*")
            expect(results.first).to_contain_text("PC05TK0000123")
            expect(page.locator("#search-results")).not_to_contain_text("Văn")
            page.screenshot(path=str(shots / "desk-search.png"), full_page=True)

            results.first.locator("a").click()
            earlier = page.locator("#earlier")
            expect(earlier).to_contain_text("Các cuộc trò chuyện trước")
            expect(earlier.locator("li")).to_have_count(1)
            expect(earlier).to_contain_text("14/11/2025")

            page.goto(f"{desk}/search?q=31/02/2025")
            expect(page.locator("#search-error")).to_contain_text("không hợp lệ")
        finally:
            browser.close()
