"""The customer's erasure request and the retention purge act on the stored conversations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

from common.erasure import FORGET_SLOT
from deploy import purge_conversations
from deploy.windowed_tracker_store import WindowedSQLTrackerStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def stored(db: Path, sender: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from events where sender_id = ?", (sender,)).fetchone()[0])


async def say(store: WindowedSQLTrackerStore, sender: str, text: str, *extra: object) -> None:
    tracker = await store.get_or_create_tracker(sender)
    tracker.update(UserUttered(text, {"name": "inform", "confidence": 1.0}))
    tracker.update(BotUttered("Dạ"))
    for event in extra:
        tracker.update(event)  # type: ignore[arg-type]
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)


async def test_delete_my_data_erases_the_conversation_and_only_it(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "events.db"
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(db), window_turns=3)
    for sender in ("zalo:owner", "zalo:other"):
        for i in range(5):
            await say(store, sender, f"số điện thoại của tôi là 0905123456 ({i})")
    assert stored(db, "zalo:owner") > 10
    await say(store, "zalo:owner", "xóa dữ liệu", SlotSet(FORGET_SLOT, True))
    assert stored(db, "zalo:owner") == 0
    assert stored(db, "zalo:other") > 10
    assert await store.retrieve("zalo:owner") is None
    with sqlite3.connect(db) as conn:
        texts = " ".join(r[0] for r in conn.execute("select data from events where sender_id = 'zalo:owner'"))
    assert "0905123456" not in texts
    # The next message starts a new conversation.
    await say(store, "zalo:owner", "xin chào")
    tracker = await store.retrieve("zalo:owner")
    assert tracker is not None and tracker.latest_message is not None
    assert tracker.latest_message.text == "xin chào"


async def test_purge_deletes_conversations_idle_past_the_retention(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "events.db"
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(db), window_turns=3)
    await say(store, "old", "tin cũ")
    await say(store, "recent", "tin mới")
    with sqlite3.connect(db) as conn:  # "old" last spoke 200 days ago, "recent" 10 days ago
        conn.execute("update events set timestamp = timestamp - 200 * 86400 where sender_id = 'old'")
        conn.execute("update events set timestamp = timestamp - 10 * 86400 where sender_id = 'recent'")
    url = f"sqlite:///{db}"
    assert purge_conversations.purge(url, 180, dry_run=True)[0] == 1 and stored(db, "old") > 0
    conversations, events = purge_conversations.purge(url, 180)
    assert conversations == 1 and events > 0
    assert stored(db, "old") == 0 and stored(db, "recent") > 0
    assert purge_conversations.purge(url, 5)[0] == 1  # a shorter retention takes "recent" too


def test_retention_setting_is_checked() -> None:
    assert purge_conversations.retention_days({}) == 180
    assert purge_conversations.retention_days({"CONVERSATION_RETENTION_DAYS": "30"}) == 30
    for bad in ("0", "abc", "²", "9999"):
        with pytest.raises(SystemExit, match="CONVERSATION_RETENTION_DAYS"):
            purge_conversations.retention_days({"CONVERSATION_RETENTION_DAYS": bad})


def test_purge_command_prints_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert purge_conversations.main(["--db", str(tmp_path / "missing.db")]) == 0
    assert "nothing to purge" in capsys.readouterr().out
