"""The trainers' inbox (issue 19): poorly understood messages from Rasa's events, masked, grouped,
counted per day; roles, CSRF and bounded inputs."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent_desk import db, presence
from agent_desk.keys import DESK, ENGINE, SETTINGS
from tests.desk.conftest import DeskFactory, desk_settings, queue
from tests.desk.training_helpers import (
    DAY,
    NOW,
    action_event,
    groups_on_page,
    project_copy,
    user_event,
    workbench,
    write_events,
)

PHONE = "0905123456"
EMAIL = "tran.bich@example.com"
NAME = "Trần Thị Bích"
CODE = "pc05-tk 0000123"
ACCOUNT = "1903-5678-9012-34"
BIRTH = "12/05/1990"
KNOWN = "chào buổi sáng"  # a greet example of bot/data/nlu/general.yml


def conversations() -> dict[str, list[dict]]:
    return {
        "zalo-1": [
            # FallbackClassifier with a phone, an e-mail and a full name in it, then the fallback action.
            user_event(
                f"sdt của tôi là {PHONE} mail {EMAIL}, tôi là {NAME} hỏi tiền điện, mã {CODE}"
                f" stk {ACCOUNT} sinh {BIRTH}",
                "nlu_fallback",
                0.4,
                NOW - 60,
                [("nlu_fallback", 0.4), ("ask_bill", 0.3)],
            ),
            action_event("action_default_fallback", NOW - 59),
            # Low confidence, twice, written differently: one group of 2.
            user_event("cho e hỏi cái vụ điện nhà e á", "track_request", 0.41, NOW - 50),
            # Already a training example: left out even though the confidence is low.
            user_event(KNOWN, "greet", 0.3, NOW - 40),
        ],
        "tg-2": [
            user_event("Cho e hoi cai vu dien nha e a!!", "track_request", 0.35, NOW - DAY),
            # Confident, then the customer asks for a person: the message before is the miss.
            user_event("hợp đồng bị sai tên chủ hộ rồi", "sign_documents", 0.72, NOW - DAY + 10),
            user_event("cho gặp nhân viên", "human_handoff", 0.97, NOW - DAY + 20),
            action_event("action_request_handoff", NOW - DAY + 21),
        ],
    }


async def test_inbox_groups_masks_and_counts(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    write_events(tmp_path / "rasa_events.db", conversations())
    client, _token = await workbench(desk_factory, tmp_path, project)
    resp = await client.get("/training")
    assert resp.status == 200
    page = await resp.text()
    # Trainers are not agents: not even the part of a phone an agent sees, nor codes, accounts, dates.
    for secret in (
        PHONE,
        EMAIL,
        "Bích",
        "Trần Thị",
        "tran.bich",
        "123456",
        "0905",
        "0000123",
        "5678",
        "1990",
    ):
        assert secret not in page
    assert "PC00XX0000000" in page and "0900000000" in page and "01/01/2000" in page
    groups = await groups_on_page(client)
    texts = list(groups)
    assert len(groups) == 3, texts
    assert not any(KNOWN in t for t in texts)
    assert any("Nguyễn Văn A" in t for t in texts)  # the name replaced by a sample
    assert "Bot không hiểu (fallback)" in page and "Chuyển nhân viên sau khi hiểu sai" in page
    assert "Độ tin cậy thấp" in page
    # The stored rows never hold the raw text either.
    conn = sqlite3.connect(tmp_path / "desk.db")
    rows = conn.execute("SELECT text, count, reasons FROM desk_training_inbox").fetchall()
    dump = repr(rows)
    for secret in (PHONE, EMAIL, "Bích"):
        assert secret not in dump
    by_reason = {r[2]: r[1] for r in rows}
    assert by_reason["low_confidence"] == 2  # the two spellings are one group
    assert "fallback" in by_reason and "handoff" in by_reason
    days = dict(
        conn.execute("SELECT reason, SUM(count) FROM desk_training_inbox_days GROUP BY reason").fetchall()
    )
    conn.close()
    assert days["all"] == 4
    # The per-day table: today 2 messages, yesterday 2.
    table = page.split('id="inbox-days"')[1]
    first_rows = table.split("<tr>")[2:4]
    assert "<td>2</td>" in first_rows[0] and "<td>2</td>" in first_rows[1]
    # Collecting again reads nothing twice (the cursor is kept).
    await client.get("/training")
    conn = sqlite3.connect(tmp_path / "desk.db")
    assert conn.execute("SELECT SUM(count) FROM desk_training_inbox").fetchone()[0] == 4
    conn.close()


async def test_filters_dismiss_and_pages(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    write_events(tmp_path / "rasa_events.db", conversations())
    client, token = await workbench(desk_factory, tmp_path, project)
    only_low = await groups_on_page(client, "?reason=low_confidence")
    assert len(only_low) == 1
    group_id = next(iter(only_low.values()))
    resp = await client.post(
        f"/training/groups/{group_id}/dismiss", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    assert group_id not in (await groups_on_page(client)).values()
    assert group_id in (await groups_on_page(client, "?status=dismissed")).values()
    resp = await client.get("/training?page=2")
    assert resp.status == 200


async def test_roles(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    trainer, _ = await workbench(desk_factory, tmp_path, project)
    resp = await trainer.get("/")
    assert resp.status == 403
    assert "Tài khoản huấn luyện chỉ dùng được trang Huấn luyện" in await resp.text()
    assert (await trainer.get("/search")).status == 403
    assert (await trainer.get("/conversations/1")).status == 403
    page = await (await trainer.get("/training")).text()
    assert 'href="/training">Huấn luyện</a>' in page

    agent, _ = await workbench(desk_factory, tmp_path, project, role="agent", username="binh", name="Bình")
    resp = await agent.get("/training")
    assert resp.status == 403
    assert "nhân viên huấn luyện và giám sát viên" in await resp.text()
    assert (await agent.get("/training/examples")).status == 403
    assert 'href="/training"' not in await (await agent.get("/")).text()

    boss, _ = await workbench(desk_factory, tmp_path, project, role="supervisor", username="chi", name="Chi")
    assert (await boss.get("/training")).status == 200
    # Trainers are never offered conversations (assignment and transfer lists).
    listed = await presence.list_agents(trainer.app[ENGINE], trainer.app[SETTINGS])
    assert {p.username for p in listed} == {"binh", "chi"}  # the three desks share one database
    assert (await boss.get("/training/examples?intent=greet")).status == 200
    assert (await boss.get("/")).status == 200


async def test_csrf_and_login_required(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    write_events(tmp_path / "rasa_events.db", conversations())
    client, _token = await workbench(desk_factory, tmp_path, project)
    group_id = next(iter((await groups_on_page(client)).values()))
    for path in (
        f"/training/groups/{group_id}/dismiss",
        f"/training/groups/{group_id}/label",
        "/training/check",
    ):
        resp = await client.post(path, data={"intent": "greet", "text": "xin chao", "action": "save"})
        assert resp.status == 403, path
        assert "CSRF" in await resp.text()
    await client.post("/logout", data={"csrf_token": _token})
    resp = await client.get("/training", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")


async def test_bad_inputs_are_400(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, token = await workbench(desk_factory, tmp_path, project)
    for query in ("?page=abc", "?page=0", "?page=99999999999", "?reason=nope", "?status=<b>"):
        resp = await client.get("/training" + query)
        assert resp.status == 400, query
        assert "không hợp lệ" in await resp.text()
    resp = await client.get("/training/examples?q=" + "a" * 101)
    assert resp.status == 400 and "tối đa 100" in await resp.text()
    resp = await client.get("/training/examples?intent=khong_co")
    assert resp.status == 400
    assert (await client.get("/training/groups/99999")).status == 404
    resp = await client.post(
        "/training/check", data={"csrf_token": token, "intent": "greet", "text": "x" * 501}
    )
    assert resp.status == 400 and "tối đa 500" in await resp.text()
    resp = await client.post("/training/check", data={"csrf_token": token, "intent": "greet", "text": "  "})
    assert resp.status == 400
    resp = await client.post(
        "/training/check",
        data={"csrf_token": token, "intent": "greet", "text": "chào em", "entity_1": "nope", "value_1": "em"},
    )
    assert resp.status == 400


async def test_handoff_answered_by_an_agent_is_corrected(desk_factory: DeskFactory, tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    client, _ = await workbench(desk_factory, tmp_path, project)
    desk = client.app[DESK]
    await queue(desk, "zalo-77")  # the customer reached the desk ...
    async with desk.engine.begin() as conn:  # ... and an agent answered
        await conn.execute(
            db.handoffs.update().where(db.handoffs.c.sender_id == "zalo-77").values(first_reply_at=NOW)
        )
    write_events(
        tmp_path / "rasa_events.db",
        {
            "zalo-77": [
                user_event("công tơ nhà tôi quay nhanh bất thường", "ask_bill", 0.7, NOW - 30),
                user_event("cho gặp nhân viên", "human_handoff", 0.97, NOW - 20),
                action_event("action_request_handoff", NOW - 19),
            ]
        },
    )
    groups = await groups_on_page(client, "?reason=corrected")
    assert list(groups) == ["công tơ nhà tôi quay nhanh bất thường"]
    page = await (await client.get("/training?reason=corrected")).text()
    assert "Nhân viên đã xử lý thay" in page


@pytest.mark.postgres
async def test_two_desks_storing_the_same_events_count_them_once(
    postgres_url, desk_factory, tmp_path
) -> None:
    """Two desk processes on one database read the same batch: the cursor moves once, in the same
    transaction as the groups, so the messages are counted once."""
    from agent_desk.training import inbox

    settings = desk_settings(tmp_path, env={"DESK_DATABASE_URL": postgres_url})
    one = (await desk_factory(settings, background=False)).app[ENGINE]
    two = (await desk_factory(settings, background=False)).app[ENGINE]
    words = ["mưa", "nắng", "gió", "bão", "sấm", "chớp", "mây", "sương", "tuyết", "lũ"]
    texts = [f"trời {a} rồi {b} quá" for a in words[:5] for b in words[5:9]]
    found = [inbox.Candidate(t, inbox.group_key(t), ("fallback",), "nlu_fallback", 0.3, NOW) for t in texts]
    for start, end in ((0, 50), (50, 90)):
        stored = await asyncio.gather(
            inbox.store(one, found, start, end), inbox.store(two, found, start, end)
        )
        assert sorted(stored) == [0, 20]
    async with one.connect() as conn:
        counts = (await conn.execute(sa.select(inbox.inbox.c.count))).scalars().all()
        position = await conn.scalar(
            sa.select(db.broker_cursor.c.position).where(db.broker_cursor.c.name == inbox.CURSOR)
        )
    assert sorted(counts) == [2] * 20 and position == 90
