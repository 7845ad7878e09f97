"""Issue 18 in Debian's chromium, the desk alone (no Rasa: the conversation page says it cannot load
the history, which is not looked at here): the reply draft survives a reload and saving a note; a
customer writing in the agent's other conversation shows in the title and the "Hội thoại của tôi"
badge; at 1366×768 the hand-back and the notes are in view, at 800 px the canned replies sit right
under the reply box. Screenshots to docs/img/ with UPDATE_SCREENSHOTS=1 only."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_desk import accounts, db
from agent_desk.config import async_db_url
from devstack import processes
from tests.browser.support import PASSWORD, login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
SENDERS = ["tg-7001", "tg-7002"]


async def seed(url: str) -> None:
    engine = db.make_engine(async_db_url(url))
    try:
        await db.create_schema(engine)
        await accounts.create(engine, "lan", PASSWORD, "agent", "Lan")
        now = time.time()
        async with engine.begin() as conn:
            for sender in SENDERS:  # both Lan's, active
                await conn.execute(
                    db.handoffs.insert().values(
                        sender_id=sender,
                        channel="telegram",
                        status="active",
                        requested_at=now - 120,
                        queued_at=now - 120,
                        claimed_at=now - 60,
                        agent_id=1,
                        agent_activity_at=now + 3600,  # never idle during the test
                        customer_last_at=now - 120,
                        last_messages="[]",
                        requeue_count=0,
                    )
                )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("desk-ux")
    url = f"sqlite:///{root / 'desk.db'}"
    asyncio.run(seed(url))
    events_db = root / "rasa_events.db"
    with sqlite3.connect(events_db) as conn:  # empty: the desk follows it from the start
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {
            "DESK_DATABASE_URL": url,
            "RASA_URL": "http://127.0.0.1:9",
            "SIGNING_SERVICE_URL": "http://127.0.0.1:9",
            "RASA_EVENTS_DB": str(events_db),
            "AGENT_IDLE_TIMEOUT": "36000",
        },
    )
    proc = processes.agent_desk(ports, env, root / "log")
    proc.start()
    try:
        proc.wait_healthy(60)
        yield f"http://127.0.0.1:{ports.desk}", events_db
    finally:
        proc.stop()


def customer_writes(events_db: Path, sender: str, text: str) -> None:
    event = {"event": "user", "text": text, "timestamp": time.time(), "sender_id": sender}
    event["input_channel"] = "telegram"
    with sqlite3.connect(events_db) as conn:
        conn.execute("INSERT INTO events (sender_id, data) VALUES (?, ?)", (sender, json.dumps(event)))


LONG_TRANSCRIPT = """() => {
  const list = document.getElementById("transcript");
  for (let i = 0; i < 40; i++) {
    const item = document.createElement("li");
    item.className = "msg msg-user";
    item.textContent = "Tin nhắn số " + i + " của khách, khá dài để chiếm một dòng đầy đủ trong khung.";
    list.appendChild(item);
  }
}"""


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found, f"{selector} not rendered"
    return found


def test_draft_alert_and_layout(desk: tuple[str, Path], browser: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    base, events_db = desk
    page = browser.new_page(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    login(page, base, "lan")

    # 3. The draft: kept across a reload and a saved note, gone once sent (sending needs Rasa: the
    # clearing is the same code path as an emptied box, checked by emptying it).
    page.goto(f"{base}/conversations/1")
    page.fill("#reply-text", "Dạ em đang kiểm tra hồ sơ")
    page.reload()
    expect(page.locator("#reply-text")).to_have_value("Dạ em đang kiểm tra hồ sơ")
    page.fill("#notes textarea[name=text]", "Khách gọi lần hai")
    page.click("#notes button[type=submit]")
    expect(page.locator("#notes")).to_contain_text("Khách gọi lần hai")
    expect(page.locator("#reply-text")).to_have_value("Dạ em đang kiểm tra hồ sơ")
    page.goto(f"{base}/conversations/2")
    expect(page.locator("#reply-text")).to_have_value("")  # per conversation

    # 5. Layout at 1366×768: reply, hand-back and the notes' box in view without scrolling.
    page.goto(f"{base}/conversations/1")
    page.evaluate(LONG_TRANSCRIPT)  # a long conversation (no Rasa here to hold one)
    for selector in ("#reply-text", "#handback-button", "#notes textarea", "#canned-card"):
        found = box(page, selector)
        assert found["y"] + found["height"] <= 768, (selector, found)
    page.screenshot(path=str(shots / "desk-conversation-1366.png"))

    # 2. A customer writes in Lan's other conversation: the title counts it, the badge shows it.
    expect(page).to_have_title("Hội thoại #1 · Bàn trực CSKH")
    page.wait_for_timeout(1500)  # the event stream's first snapshot (the baseline)
    customer_writes(events_db, SENDERS[1], "Alo, em ơi?")
    expect(page).to_have_title("(1) Hội thoại #1 · Bàn trực CSKH", timeout=15_000)
    expect(page.locator("#mine-badge")).to_be_visible()
    expect(page.locator("#mine-badge")).to_have_text("1")
    # A message in the conversation on screen is not an alert.
    customer_writes(events_db, SENDERS[0], "Em xem giúp nhé")
    expect(page.locator("#transcript")).to_contain_text("Em xem giúp nhé", timeout=15_000)
    expect(page).to_have_title("(1) Hội thoại #1 · Bàn trực CSKH")
    # The queue page marks the conversation; opening it clears the count.
    page.click("#mine-link")
    expect(page.locator('#active tr[data-id="2"]')).to_have_class("unread", timeout=15_000)
    page.goto(f"{base}/conversations/2")
    expect(page.locator("#mine-badge")).to_be_hidden(timeout=15_000)
    expect(page).to_have_title("Hội thoại #2 · Bàn trực CSKH")

    # 3 (end). An emptied box forgets the draft.
    page.goto(f"{base}/conversations/1")
    page.fill("#reply-text", "")
    page.reload()
    expect(page.locator("#reply-text")).to_have_value("")

    # 5. At 800 px wide the canned replies come right under the reply box.
    page.set_viewport_size({"width": 800, "height": 900})
    page.reload()
    reply, canned = box(page, "#reply-form"), box(page, "#canned-card")
    assert 0 <= canned["y"] - (reply["y"] + reply["height"]) <= 200, (reply, canned)
    page.screenshot(path=str(shots / "desk-conversation-800.png"), full_page=True)
    page.close()
