"""Shared connector helpers: text splitting, dedupe, masking, rate limiting, reply mapping."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.common.dedupe import RecentKeys, SharedRecentKeys, recent_keys
from connectors.common.masking import mask_id, mask_text
from connectors.common.outgoing import Button, Document, from_rasa
from connectors.common.ratelimit import RateLimiter
from connectors.common.text import split_text, utf16_len


@given(st.text(alphabet=st.sampled_from("ab cđệ\n😀"), max_size=600), st.integers(min_value=1, max_value=80))
def test_split_text_respects_limit_and_keeps_content(text: str, limit: int) -> None:
    for length in (len, utf16_len):
        if length is utf16_len and limit < 2:
            continue  # an emoji alone is 2 UTF-16 units
        chunks = split_text(text, limit, length)
        assert all(chunks) and all(length(c) <= limit for c in chunks)
        assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())


def test_split_text_prefers_paragraphs_then_words() -> None:
    text = "Đoạn một." + "\n\n" + "x" * 15 + " cuối"
    assert split_text(text, 22) == ["Đoạn một.", "x" * 15 + " cuối"]
    assert split_text("một hai ba bốn", 8) == ["một hai", "ba bốn"]
    assert split_text("a" * 10, 4) == ["aaaa", "aaaa", "aa"]


def test_recent_keys_drops_duplicates_within_ttl_and_stays_bounded() -> None:
    now = [0.0]
    keys = RecentKeys(ttl=10, max_size=3, clock=lambda: now[0])
    assert keys.check_and_add("m1") and not keys.check_and_add("m1")
    now[0] = 11
    assert keys.check_and_add("m1")  # expired: a very late redelivery is processed again
    for k in ("a", "b", "c", "d"):
        keys.check_and_add(k)
    assert len(keys) == 3


def test_masking_hides_ids_phones_and_emails() -> None:
    assert mask_id("zalo:6142987654321") == "zalo:***321"
    assert "0905123456" not in mask_text("gọi 0905123456 hoặc an@example.com")
    assert "an@example.com" not in mask_text("an@example.com")


async def test_rate_limiter_paces_per_key_after_burst() -> None:
    limiter = RateLimiter(global_rate=1000, global_burst=1000, per_key_rate=20, per_key_burst=2)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire("chat") for _ in range(6)))
    assert time.monotonic() - started >= 0.18  # 4 sends beyond the burst at 20/s
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire(f"c{i}") for i in range(6)))
    assert time.monotonic() - started < 0.1  # different chats are not held back


def test_from_rasa_maps_buttons_documents_and_ignores_metadata() -> None:
    reply = from_rasa(
        {
            "text": "Chọn tài liệu",
            "timestamp": 1.0,
            "buttons": [
                {"title": "Ký", "payload": "/sign_documents"},
                {"title": "Xem", "payload": "https://x.vn/a.pdf"},
                {"title": "Không payload"},
                {"payload": "/no_title"},
            ],
            "custom": {
                "documents": [
                    {"title": "HĐMBĐ", "url": "https://x.vn/1.pdf"},
                    {"title": "bad", "url": "ftp://x"},
                ]
            },
            "attachment": "https://x.vn/2.pdf?sig=1",
        }
    )
    assert reply.text == "Chọn tài liệu"
    assert reply.buttons == [
        Button("Ký", payload="/sign_documents"),
        Button("Xem", url="https://x.vn/a.pdf"),
        Button("Không payload", payload="Không payload"),
    ]
    assert reply.documents == [
        Document("HĐMBĐ", "https://x.vn/1.pdf"),
        Document("2.pdf", "https://x.vn/2.pdf?sig=1"),
    ]
    assert from_rasa({"text": None, "timestamp": 1}).empty


def test_shared_recent_keys_are_common_to_worker_processes(tmp_path: Path) -> None:
    # Two objects on one file stand for two Rasa worker processes receiving copies of a delivery.
    now = [1000.0]
    db = tmp_path / "dedupe.db"
    worker1 = SharedRecentKeys(db, "telegram", ttl=10, max_size=100, clock=lambda: now[0])
    worker2 = SharedRecentKeys(db, "telegram", ttl=10, max_size=100, clock=lambda: now[0])
    zalo = SharedRecentKeys(db, "zalo", ttl=10, max_size=100, clock=lambda: now[0])
    assert worker1.check_and_add("update-1")
    assert not worker2.check_and_add("update-1"), "a copy on the other worker is dropped"
    assert zalo.check_and_add("update-1"), "channels do not share keys"
    now[0] += 11
    assert worker2.check_and_add("update-1"), "expired: a very late redelivery is processed again"
    for i in range(1000):
        worker1.check_and_add(f"k{i}")
    assert len(worker1) <= 100 + 1


def test_recent_keys_are_shared_when_the_dedupe_file_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHANNEL_DEDUPE_DB", raising=False)
    assert isinstance(recent_keys("zalo", 60, 10), RecentKeys)
    monkeypatch.setenv("CHANNEL_DEDUPE_DB", str(tmp_path / "d" / "dedupe.db"))
    shared = recent_keys("zalo", 60, 10)
    assert isinstance(shared, SharedRecentKeys) and (tmp_path / "d" / "dedupe.db").exists()
