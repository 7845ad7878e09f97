"""Supervisors' reports (agent_desk/reports.py): figures computed on crafted handoffs and answers."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa

from agent_desk import db, reports
from agent_desk.desk import VN_TZ
from agent_desk.keys import DESK
from tests.desk.conftest import add_account, desk_settings, login

DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=VN_TZ).timestamp()  # a Monday morning in Viet Nam
DAY = 86400.0


@pytest.fixture
async def client(desk_factory, tmp_path):
    client = await desk_factory(desk_settings(tmp_path), background=False)
    await add_account(client, "lan", name="Lan")
    await add_account(client, "minh", name='=Minh, "ca tối"')  # a name a spreadsheet would misread
    await add_account(client, "hung", role="supervisor", name="Hùng")
    await seed(client)
    return client


async def seed(client) -> None:
    engine = client.app[DESK].engine
    async with engine.begin() as conn:
        ids = {
            r.username: r.id
            for r in (await conn.execute(sa.select(db.agents.c.id, db.agents.c.username))).all()
        }
        lan, minh = ids["lan"], ids["minh"]
        n = 0

        async def handoff(
            at: float,
            status: str,
            wait: float | None,
            agent: int | None = None,
            handling: float | None = None,
            first: float | None = None,
            end: float | None = None,
            score: int | None = None,
            asked: bool = False,
            comment: str | None = None,
        ) -> None:
            nonlocal n
            n += 1
            claimed = at + wait if wait is not None and agent is not None else None
            closed = claimed + handling if claimed is not None and handling is not None else end
            result = await conn.execute(
                db.handoffs.insert().values(
                    sender_id=f"zalo-{n}",
                    channel="zalo",
                    status=status,
                    requested_at=at,
                    queued_at=at,
                    claimed_at=claimed,
                    agent_id=agent,
                    closed_at=closed,
                    first_reply_at=claimed + first if claimed is not None and first is not None else None,
                    last_messages="[]",
                    requeue_count=0,
                )
            )
            if asked or score is not None:
                assert agent is not None and closed is not None
                await conn.execute(
                    db.csat.insert().values(
                        handoff_id=result.inserted_primary_key[0],
                        sender_id=f"zalo-{n}",
                        agent_id=agent,
                        score=score,
                        comment=comment,
                        asked_at=closed,
                        answered_at=closed + 10 if score else None,
                        commented_at=closed + 20 if comment else None,
                    )
                )

        # Day 1 (2/11): Lan takes four, one request times out after 300 s.
        await handoff(
            DAY1, "closed", 10, lan, handling=100, first=5, score=5, comment="Rất tốt, số tôi 0905123456"
        )
        await handoff(DAY1 + 60, "closed", 20, lan, handling=200, first=15, score=4)
        await handoff(DAY1 + 120, "closed", 30, lan, handling=300, first=25, asked=True)
        await handoff(DAY1 + 180, "active", 400, lan)
        await handoff(DAY1 + 240, "timed_out", None, end=DAY1 + 540)
        # Day 2 (3/11): Minh takes two (one first reply was sent before his claim: left out), one
        # customer withdraws after 50 s; 23:59 is still the same Vietnamese day.
        await handoff(DAY1 + DAY, "closed", 60, minh, handling=600, first=-30, score=2)
        await handoff(DAY1 + DAY + 50_000, "closed", 120, minh, handling=60, first=40)
        await handoff(DAY1 + DAY + 100, "cancelled", None, end=DAY1 + DAY + 150)
        # Outside the range: the day before and the day after.
        await handoff(DAY1 - DAY, "closed", 999, lan, handling=999, first=999, score=1)
        await handoff(DAY1 + 3 * DAY, "closed", 999, lan, handling=999, first=999, score=1)


def test_percentiles_are_nearest_rank() -> None:
    assert reports.percentile([], 50) is None
    assert reports.percentile([7.0], 95) == 7.0
    values = [float(v) for v in range(20, 0, -1)]  # 1..20, unsorted
    assert reports.percentile(values, 50) == 10.0 and reports.percentile(values, 95) == 19.0
    assert reports.percentile([10.0, 20.0, 30.0, 300.0, 400.0], 50) == 30.0
    assert reports.percentile([10.0, 20.0, 30.0, 300.0, 400.0], 95) == 400.0


def test_ranges() -> None:
    now = datetime(2026, 11, 5, 0, 30, tzinfo=VN_TZ).timestamp()  # still 4/11 in UTC
    default = reports.parse_period(None, None, now=now)
    assert (default.start, default.end) == (date(2026, 10, 30), date(2026, 11, 5))
    one = reports.parse_period("2026-11-02", "2026-11-02")
    assert one.start_ts == datetime(2026, 11, 1, 17, 0, tzinfo=timezone.utc).timestamp()  # 00:00 in Viet Nam
    assert one.end_ts - one.start_ts == 86400
    for bad in (
        ("2026-11-03", "2026-11-02"),
        ("2026-02-30", None),
        ("2026-1-2", None),
        ("２０２６-11-02", None),
    ):
        with pytest.raises(reports.ReportError):
            reports.parse_period(*bad)
    with pytest.raises(reports.ReportError, match="366"):
        reports.parse_period("2025-01-01", "2026-11-02")


async def test_figures_per_day_and_per_agent(client) -> None:
    report = await reports.build(client.app[DESK].engine, reports.parse_period("2026-11-02", "2026-11-04"))
    days = dict(report.days)
    assert list(days) == [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
    d1, d2, d3 = days.values()
    assert (d1.conversations, d1.closed, d1.timed_out, d1.cancelled) == (5, 3, 1, 0)
    assert (d1.wait_p50, d1.wait_p95) == (30.0, 400.0)  # waits 10, 20, 30, 300 (timed out), 400
    assert d1.first_response_avg == 15.0 and d1.handling_avg == 200.0
    assert (d1.csat_avg, d1.csat_answers, d1.surveys) == (4.5, 2, 3)
    assert (d2.conversations, d2.closed, d2.cancelled) == (3, 2, 1)
    assert (d2.wait_p50, d2.wait_p95) == (60.0, 120.0)  # 50 (withdrawn), 60, 120
    assert d2.first_response_avg == 40.0 and d2.handling_avg == 330.0
    assert (d2.csat_avg, d2.csat_answers) == (2.0, 1)
    assert d3.conversations == 0 and d3.wait_p50 is None and d3.csat_avg is None
    t = report.total
    assert (t.conversations, t.closed, t.timed_out, t.cancelled) == (8, 5, 1, 1)
    assert (t.wait_p50, t.wait_p95) == (50.0, 400.0)  # 10 20 30 50 60 120 300 400
    assert [x.username for x in report.agents] == ["minh", "lan"]  # by name: "=Minh..." sorts first
    minh, lan = report.agents
    assert (lan.figures.conversations, lan.figures.closed) == (4, 3)
    assert (lan.figures.wait_p50, lan.figures.wait_p95) == (20.0, 400.0)
    assert (lan.figures.csat_avg, lan.figures.csat_answers, lan.figures.surveys) == (4.5, 2, 3)
    assert (minh.figures.conversations, minh.figures.wait_p50, minh.figures.wait_p95) == (2, 60.0, 120.0)
    assert minh.figures.handling_avg == 330.0 and minh.figures.csat_avg == 2.0
    (comment,) = report.comments
    assert comment["score"] == 5 and comment["agent_name"] == "Lan"
    assert "0905123456" not in comment["comment"] and comment["comment"].startswith("Rất tốt")
    for chart in reports.charts(report):
        assert not chart.empty and all(b.h >= 0 and b.y >= 0 for b in chart.bars)


async def test_page_and_csv(client) -> None:
    await login(client, "hung")
    page = await client.get("/reports?from=2026-11-02&to=2026-11-04")
    assert page.status == 200
    html = await page.text()
    assert html.count("<svg") == 3 and "<rect" in html and '<script src="http' not in html
    assert 'id="report-days"' in html and "02/11/2026" in html and "04/11/2026" in html
    assert "&#34;ca tối&#34;" in html or "&quot;ca tối&quot;" in html  # escaped, not markup
    assert "0905123456" not in html and "Rất tốt" in html
    assert 'href="/reports.csv?from=2026-11-02&amp;to=2026-11-04"' in html
    default = await (await client.get("/reports")).text()
    assert 'name="from"' in default and 'type="date"' in default

    resp = await client.get("/reports.csv?from=2026-11-02&to=2026-11-04")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    body = await resp.read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == reports.CSV_HEADER
    by_name = {(r[0], r[1]): r for r in rows[1:]}
    assert len(rows) == 1 + 3 + 2 + 1
    d1 = by_name[("Ngày", "2026-11-02")]
    assert d1[2:8] == ["5", "3", "1", "0", "30.0", "400.0"] and d1[10:] == ["4.50", "2", "3"]
    minh = by_name[("Nhân viên", '\'=Minh, "ca tối"')]  # quoted by csv, kept text for spreadsheets
    assert minh[2:4] == ["2", "2"] and minh[4:6] == ["", ""] and minh[6:8] == ["60.0", "120.0"]
    assert by_name[("Tổng", "2026-11-02..2026-11-04")][2] == "8"


async def test_refused(client) -> None:
    await login(client, "lan")
    page = await client.get("/reports")
    assert page.status == 403 and "giám sát" in await page.text()
    assert (await client.get("/reports.csv")).status == 403
    await login(client, "hung")
    bad = await client.get("/reports?from=2026-11-05&to=2026-11-01")
    assert bad.status == 400 and "Ngày bắt đầu" in await bad.text()
    assert (await client.get("/reports.csv?from=x")).status == 400
