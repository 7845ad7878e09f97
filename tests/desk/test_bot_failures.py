"""Bot failures go to people (issue 18), in the agent desk.

A customer's Zalo or Telegram message meets a failing bot (the stand-in for Rasa's handler raises, as
when the lock store or the tracker store is down): the connector records it in the bot failures
store and tells the customer; the desk tails that store and queues the conversation flagged "bot lỗi"
with the message; a redelivery duplicates nothing. The /demo proxy with Rasa down does the same.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent_desk import bot_failures
from agent_desk.app import FAILURES
from agent_desk.keys import DESK
from connectors.common import bot_failures as store
from connectors.common.canned import BOT_FAILURE_TEXT
from connectors.telegram.config import TelegramSettings
from connectors.zalo.channel import ZaloInput
from connectors.zalo.config import ZaloSettings
from tests.connectors.conftest import (  # noqa: F401 (fixtures)
    ZALO_APP_ID,
    ZALO_OA_SECRET,
    fake_telegram,
    fake_zalo,
    telegram_settings,
    zalo_settings,
)
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi
from tests.connectors.harness import serve
from tests.connectors.test_bot_failures import FailingBot
from tests.connectors.test_telegram import channel as telegram_channel
from tests.connectors.test_telegram import post as tg_post
from tests.connectors.test_zalo_webhook import post as zalo_post
from tests.connectors.tg_helpers import text_update
from tests.connectors.zalo_helpers import event, signed
from tests.desk.conftest import add_account, desk_settings, login, wait_for
from tests.desk.test_resilience import request_events

ZALO_USER = "6142000000321"
CHAT = 700000321


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The store both sides use: the connectors read BOT_FAILURES_URL, the desk its settings."""
    url = f"sqlite:///{tmp_path / 'bot_failures.db'}"
    monkeypatch.setenv("BOT_FAILURES_URL", url)
    return url


def record(
    url: str, key: str, sender: str, text: str, reason: str = "rasa_error", channel: str = "zalo"
) -> None:
    """What the Rasa process writes (connectors/common/bot_failures.py), synchronously."""
    assert store.FailureStore(url).add(store.BotFailure(key, time.time(), channel, sender, reason, "X", text))


async def test_a_zalo_message_the_bot_failed_on_is_queued_once_flagged_with_the_message(
    desk_factory,
    tmp_path,
    store_url,
    zalo_settings: ZaloSettings,  # noqa: F811 (the connectors' fixture)
    fake_zalo: FakeZaloApi,  # noqa: F811
):
    client = await desk_factory(desk_settings(tmp_path))  # the desk tails the store in the background
    desk = client.app[DESK]
    bot = FailingBot()
    body = event(
        "user_send_text", user_id=ZALO_USER, text="Tôi cần gặp người, số tôi 0905123456", msg_id="m-q-1"
    )
    async with serve(ZaloInput(zalo_settings), bot) as url:
        assert (await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "accepted"
        waiting = await wait_for(lambda: _waiting(desk), what="the failure in the queue")
        assert (await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "duplicate"
    # ... and again after a restart of the channel (its dedupe memory empty): the store knows it.
    async with serve(ZaloInput(zalo_settings), bot) as url:
        await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        await bot.wait_for(2)
    await client.app[FAILURES].poll_once(desk)
    [handoff] = await desk.open_handoffs()
    assert handoff.id == waiting[0].id
    assert (handoff.sender_id, handoff.channel, handoff.status) == (f"zalo:{ZALO_USER}", "zalo", "waiting")
    assert handoff.bot_error == "rasa_error"
    # The message as agents see any customer text: the phone number masked.
    assert [m["kind"] for m in handoff.last_messages] == ["user"]
    assert "Tôi cần gặp người" in handoff.last_messages[0]["text"]
    assert "0905123456" not in handoff.last_messages[0]["text"]
    assert fake_zalo.texts_to(ZALO_USER) == [BOT_FAILURE_TEXT]  # told once

    await add_account(client, "lan", name="Lan")
    await login(client, "lan")
    snapshot = await (await client.get("/api/queue")).json()
    assert [(h["id"], h["bot_error"]) for h in snapshot["waiting"]] == [(handoff.id, "rasa_error")]
    page = await (await client.get("/")).text()
    assert "bot lỗi" in page
    page = await (await client.get(f"/conversations/{handoff.id}")).text()
    assert 'id="bot-failures"' in page and "Tôi cần gặp người" in page and "Rasa lỗi khi xử lý" in page
    assert 'id="bot-error-chip"' in page


async def _waiting(desk):
    return [h for h in await desk.open_handoffs() if h.status == "waiting"]


async def test_a_telegram_message_the_bot_failed_on_is_queued(
    desk_factory,
    tmp_path,
    store_url,
    telegram_settings: TelegramSettings,  # noqa: F811 (the connectors' fixture)
    fake_telegram: FakeTelegramApi,  # noqa: F811
):
    client = await desk_factory(desk_settings(tmp_path), background=False)
    desk = client.app[DESK]
    bot = FailingBot()
    update = text_update(CHAT, "tra cứu PC05TK0000123 giúp tôi")
    async with serve(telegram_channel(telegram_settings), bot) as url:
        await tg_post(url, update)
        await bot.wait_for(1)
    assert await client.app[FAILURES].poll_once(desk) == 1
    assert await client.app[FAILURES].poll_once(desk) == 0
    [handoff] = await desk.open_handoffs()
    assert (handoff.channel, handoff.bot_error) == ("telegram", "rasa_error")
    assert handoff.last_messages == [{"kind": "user", "text": "tra cứu PC05TK0000123 giúp tôi"}]
    await wait_for(lambda: _told(fake_telegram), what="the canned text")


async def _told(fake: FakeTelegramApi) -> bool:
    return fake.texts_to(CHAT) == [BOT_FAILURE_TEXT]


async def test_an_open_handoff_is_flagged_not_doubled_and_a_replay_adds_nothing(
    desk_factory, tmp_path, store_url
):
    client = await desk_factory(desk_settings(tmp_path), background=False)
    desk = client.app[DESK]
    now = time.time()
    for e in request_events("zalo:6142000000400", now):
        await desk.ingest(e)
    [asked] = await desk.open_handoffs()
    assert asked.bot_error is None
    record(store_url, "zalo:m-open-1", "zalo:6142000000400", "alo alo", reason="action_failed")
    record(store_url, "telegram:555", "telegram:700000400", "xin chào", channel="telegram")
    source = client.app[FAILURES]
    assert await source.poll_once(desk) == 2
    flagged = await desk.get(asked.id)
    assert flagged is not None and flagged.bot_error == "action_failed"
    assert flagged.last_messages[-1] == {"kind": "user", "text": "alo alo"}
    assert len(await desk.open_handoffs()) == 2
    # A desk that crashed before saving its cursor reads the rows again: nothing new.
    await source._save(0)
    assert await source.poll_once(desk) == 0
    assert len(await desk.open_handoffs()) == 2
    async with desk.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(bot_failures.failures)) == 2
    # The store was replaced (ids start again): read again from the start, keys still unique.
    await source._save(99)
    assert await source.poll_once(desk) == 0  # noticed, cursor reset
    assert await source.poll_once(desk) == 0  # the same keys: nothing queued twice


async def test_the_web_chat_with_rasa_down_queues_the_message_and_tells_the_visitor(desk_factory, tmp_path):
    client = await desk_factory(desk_settings(tmp_path), background=False)  # Rasa: nothing listens
    desk = client.app[DESK]
    await client.get("/demo")
    from tests.desk.conftest import csrf_of

    token = await csrf_of(client, "/demo")
    resp = await client.post(
        "/demo/api/send",
        json={"message": "cho tôi hỏi hóa đơn", "cursor": 0},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert [m["text"] for m in data["messages"]] == [BOT_FAILURE_TEXT]
    [handoff] = await desk.open_handoffs()
    assert (handoff.channel, handoff.bot_error, handoff.status) == ("rest", "desk_proxy", "waiting")
    assert handoff.sender_id.startswith("demo-")
    assert handoff.last_messages == [{"kind": "user", "text": "cho tôi hỏi hóa đơn"}]


async def test_schema_upgrade_adds_the_flag_to_an_existing_desk_database(tmp_path):
    """A desk database from before this change gets `bot_error` (ADDED_COLUMNS) and the new table."""
    from agent_desk import db

    path = tmp_path / "old.db"
    engine = db.make_engine(f"sqlite+aiosqlite:///{path}")
    old = sa.MetaData()
    sa.Table("desk_handoffs", old, *[c.copy() for c in db.handoffs.columns if c.name != "bot_error"])
    async with engine.begin() as conn:
        await conn.run_sync(old.create_all)
    await db.create_schema(engine)
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {x["name"] for x in sa.inspect(c).get_columns("desk_handoffs")}
        )
        tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    await engine.dispose()
    assert "bot_error" in columns and "desk_bot_failures" in tables


def test_reason_labels_cover_every_reason_the_connectors_record():
    assert set(store.REASONS) <= set(bot_failures.REASON_LABELS)


async def test_store_unreachable_does_not_stop_the_desk(desk_factory, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = desk_settings(tmp_path, env={"BOT_FAILURES_URL": f"sqlite:///{blocker / 'x.db'}"})
    client = await desk_factory(settings)
    await asyncio.sleep(0.3)
    assert (await client.get("/health")).status == 200
