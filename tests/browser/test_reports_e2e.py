"""The supervisors' reports page in Debian's chromium: the desk as a real process on a database of a
week of handoffs and survey answers (no Rasa needed), charts, tables, range form and CSV download.

The screenshot lands in a temporary directory, or in docs/img/desk-reports.png with UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import csv
import io
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent_desk.desk import VN_TZ
from devstack import processes
from tests.browser.support import add_desk_accounts, login, screenshots_dir

ROOT = processes.ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


def seed(database: Path, now: float) -> None:
    """Six days of handoffs for Lan and Minh (a quiet Sunday), some timed out, some rated."""
    rng = random.Random(18)
    with sqlite3.connect(database) as conn:
        agents = dict(conn.execute("SELECT username, id FROM desk_agents"))
        today = datetime.fromtimestamp(now, VN_TZ).replace(hour=8, minute=0, second=0, microsecond=0)
        n = 0
        comments = [
            "Nhân viên Lan giải thích rất rõ, cảm ơn ạ",
            "Chờ hơi lâu, gọi lại giúp tôi 0905 123 456",
            "Hướng dẫn ký hợp đồng dễ hiểu",
        ]
        for back in range(6, -1, -1):
            day = today - timedelta(days=back)
            count = 2 if day.weekday() == 6 else rng.randint(5, 11)
            for _ in range(count):
                n += 1
                at = day.timestamp() + rng.randint(0, 8 * 3600)
                if at > now - 60:
                    at = now - 3600 - n
                agent = rng.choice(["lan", "lan", "minh"])
                if rng.random() < 0.15:
                    conn.execute(
                        "INSERT INTO desk_handoffs (sender_id, channel, status, requested_at, queued_at,"
                        " closed_at, close_tag, last_messages, requeue_count)"
                        " VALUES (?, 'zalo', 'timed_out', ?, ?, ?, 'queue_timeout', '[]', 0)",
                        (f"zalo-{n}", at, at, at + 300),
                    )
                    continue
                wait = rng.choice([8, 15, 25, 40, 70, 120, 240])
                first = rng.randint(10, 90)
                handling = rng.randint(120, 900)
                cur = conn.execute(
                    "INSERT INTO desk_handoffs (sender_id, channel, status, requested_at, queued_at,"
                    " claimed_at, agent_id, agent_activity_at, closed_at, close_tag, last_messages,"
                    " requeue_count, first_reply_at)"
                    " VALUES (?, ?, 'closed', ?, ?, ?, ?, ?, ?, 'resolved', '[]', 0, ?)",
                    (
                        f"zalo-{n}",
                        rng.choice(["zalo", "telegram"]),
                        at,
                        at,
                        at + wait,
                        agents[agent],
                        at + wait + handling,
                        at + wait + handling,
                        at + wait + first,
                    ),
                )
                closed = at + wait + handling
                score = (
                    rng.choice([None, 3, 4, 5, 5, 5, 2]) if agent == "lan" else rng.choice([None, 2, 3, 4, 4])
                )
                comment = rng.choice(comments) if score and rng.random() < 0.3 else None
                conn.execute(
                    "INSERT INTO desk_csat (handoff_id, sender_id, agent_id, score, comment, asked_at,"
                    " answered_at, commented_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cur.lastrowid,
                        f"zalo-{n}",
                        agents[agent],
                        score,
                        comment,
                        closed,
                        closed + 20 if score else None,
                        closed + 60 if comment else None,
                    ),
                )


@pytest.fixture(scope="module")
def desk(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("desk-reports")
    ports = processes.Ports(desk=processes.free_port())
    nowhere = "http://127.0.0.1:9"
    env = processes.stack_env(
        ports,
        {
            "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}",
            "RASA_EVENTS_DB": str(root / "rasa_events.db"),
            "RASA_LOCKS_DB": str(root / "rasa_locks.db"),
            "BOT_FAILURES_URL": f"sqlite:///{root / 'bot_failures.db'}",
            "CHANNEL_DEDUPE_DB": str(root / "channel_dedupe.db"),
            "RASA_URL": nowhere,
            "SIGNING_SERVICE_URL": nowhere,
        },
    )
    add_desk_accounts(env, ("lan", "agent", "Lan"), ("minh", "agent", "Minh"), ("hung", "supervisor", "Hùng"))
    proc = processes.agent_desk(ports, env, root / "log")
    proc.start()
    try:
        proc.wait_healthy(60)
        seed(root / "desk.db", time.time())
        yield f"http://127.0.0.1:{ports.desk}"
    finally:
        proc.stop()


def test_supervisor_reads_and_exports_the_reports(desk, browser):
    from playwright.sync_api import expect

    agent = browser.new_context(locale="vi-VN").new_page()
    login(agent, desk, "lan")
    expect(agent.locator("header nav")).not_to_contain_text("Báo cáo")
    assert agent.goto(f"{desk}/reports").status == 403

    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="vi-VN", accept_downloads=True
    )
    page = context.new_page()
    login(page, desk, "hung")
    page.locator("header nav a", has_text="Báo cáo").click()
    page.wait_for_url(f"{desk}/reports")
    expect(page.locator("#report-days tbody tr")).to_have_count(7)  # the last seven days by default
    expect(page.locator("#report-agents tbody tr")).to_have_count(2)
    expect(page.locator("#report-agents")).to_contain_text("Lan")
    expect(page.locator("svg.bars")).to_have_count(3)
    assert page.locator("svg.bars rect").count() > 10
    expect(page.locator("#report-comments")).not_to_contain_text("0905 123 456")
    page.screenshot(path=str(screenshots_dir() / "desk-reports.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#report-csv")
    body = Path(download.value.path()).read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Phạm vi", "Ngày / nhân viên", "Yêu cầu"] and len(rows) == 1 + 7 + 2 + 1

    # One day only, through the form.
    today = datetime.now(VN_TZ).date()
    page.fill("input[name=from]", today.isoformat())
    page.fill("input[name=to]", today.isoformat())
    page.click("#report-range button[type=submit]")
    page.wait_for_url(f"{desk}/reports?from={today.isoformat()}&to={today.isoformat()}")
    expect(page.locator("#report-days tbody tr")).to_have_count(1)
