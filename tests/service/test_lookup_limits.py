"""Name lookups: two words at least, and sliding-window limits per conversation and per unit (429)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from signing_service.clock import ManualClock
from signing_service.http.app import create_app
from signing_service.http.keys import NAME_LOOKUPS
from signing_service.rate_limit import NameLookupLimiter, SlidingWindow
from signing_service.settings import ConfigError, load_settings

from .conftest import TOKEN, Api, make_settings

LOOKUP = "/v1/requests"


async def lookup(
    api: Api, name: str = "Nguyễn Văn An", unit: str = "PC05TK", conversation: str | None = None
) -> tuple[int, Any, str | None]:
    """(status, body, Retry-After header) of one name lookup, optionally from one conversation."""
    headers = dict(api.headers)
    if conversation is not None:
        headers["X-Conversation-Id"] = conversation
    params = {"unit": unit, "name": name}
    async with api.client.get(LOOKUP, params=params, headers=headers) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


@pytest.fixture
async def limited(
    aiohttp_client: Callable[..., Any],
    service_var: Path,
    request: pytest.FixtureRequest,
    clock: ManualClock,
) -> Api:
    """The service with small limits: 3 lookups per conversation per 10 min, 4 per unit per minute."""
    settings = make_settings(
        service_var,
        "sqlite",
        request,
        NAME_LOOKUPS_PER_CONVERSATION="3",
        NAME_LOOKUP_CONVERSATION_WINDOW_SECONDS="600",
        NAME_LOOKUPS_PER_UNIT="4",
        NAME_LOOKUP_UNIT_WINDOW_SECONDS="60",
    )
    return Api(await aiohttp_client(create_app(settings, clock=clock)))


@pytest.mark.parametrize("name", ["an", "Nguyễn", "NGUYEN", "  An  ", "an an", "An Ấn", "an .", "an 12"])
async def test_one_word_names_are_refused(api: Api, name: str) -> None:
    status, body, _ = await lookup(api, name, conversation="conv-short")
    assert (status, body["error"]) == (400, "name_too_short"), name
    assert "họ và tên" in body["message"]


@pytest.mark.parametrize("name", ["Nguyễn Văn An", "nguyen van an", "NGUYEN  VAN AN"])
async def test_the_exact_full_name_folded_is_needed(api: Api, name: str) -> None:
    status, body, _ = await lookup(api, name, conversation="conv-ok")
    assert status == 200, body
    assert body["count"] == 2 and all("code" not in c and c["ref"] for c in body["candidates"])
    # Part of the name ("Nguyễn An") no longer lists the namesakes.
    status, body, _ = await lookup(api, "nguyen an", conversation="conv-ok")
    assert (status, body["count"]) == (200, 0)


async def test_default_limit_is_five_lookups_per_conversation(api: Api, clock: ManualClock) -> None:
    assert api.ctx.settings.name_lookups_per_conversation == 5
    # Refused names are not counted: they list nobody.
    for _ in range(3):
        assert (await lookup(api, "an", conversation="conv-1"))[0] == 400
    for i in range(5):
        status, _, _ = await lookup(api, conversation="conv-1")
        assert status == 200, i
        clock.advance(seconds=10)
    status, body, retry = await lookup(api, conversation="conv-1")
    assert status == 429 and body["error"] == "too_many_lookups"
    assert body["message"] and "mã yêu cầu" in body["message"]
    # The first lookup leaves the 10-minute window 600 s after it was made (50 s have passed).
    assert retry == "550" and body["retry_after"] == 550
    # Another conversation on the same unit is not affected.
    assert (await lookup(api, conversation="conv-2"))[0] == 200


async def test_window_slides_with_the_clock(limited: Api, clock: ManualClock) -> None:
    # Lookups at t = 0, 120, 240 s (limit 3 per 600 s); spaced out so the per-unit limit stays clear.
    for _ in range(3):
        assert (await lookup(limited, conversation="slide"))[0] == 200
        clock.advance(seconds=120)
    status, _, retry = await lookup(limited, conversation="slide")  # t = 360
    assert (status, retry) == (429, "240")
    clock.advance(seconds=239)  # t = 599: the lookup at t = 0 is still inside the window
    status, _, retry = await lookup(limited, conversation="slide")
    assert (status, retry) == (429, "1")
    clock.advance(seconds=1)  # t = 600: it has left
    assert (await lookup(limited, conversation="slide"))[0] == 200
    # Now t = 120, 240, 600 are in the window: the next slot opens at 120 + 600.
    status, _, retry = await lookup(limited, conversation="slide")
    assert (status, retry) == (429, "120")


async def test_refusals_do_not_extend_the_wait(limited: Api, clock: ManualClock) -> None:
    for _ in range(3):
        assert (await lookup(limited, conversation="eager"))[0] == 200
    clock.advance(seconds=61)  # the per-unit minute has passed; the conversation is still full
    for _ in range(5):
        assert (await lookup(limited, conversation="eager"))[0] == 429
    clock.advance(seconds=600 - 61)
    assert (await lookup(limited, conversation="eager"))[0] == 200


async def test_unit_ceiling_holds_across_conversations(limited: Api, clock: ManualClock) -> None:
    for i in range(4):
        assert (await lookup(limited, conversation=f"walker-{i}"))[0] == 200
    # A fifth conversation still hits the unit's ceiling; a caller without a conversation id is refused.
    status, body, retry = await lookup(limited, conversation="walker-new")
    assert (status, body["error"], retry) == (429, "too_many_lookups", "60")
    status, body, _ = await lookup(limited, conversation=None)
    assert (status, body["error"]) == (400, "conversation_required")
    # Other units are counted separately.
    assert (await lookup(limited, "Trần Thị Bích Ngọc", unit="PC04HC", conversation="walker-x"))[0] == 200
    clock.advance(seconds=30)
    assert (await lookup(limited, conversation="walker-late"))[1]["retry_after"] == 30
    clock.advance(seconds=30)
    assert (await lookup(limited, conversation="walker-late"))[0] == 200


async def test_unknown_units_are_not_counted(limited: Api) -> None:
    for _ in range(10):
        status, body, _ = await lookup(limited, unit="PC99ZZ", conversation="typo")
        assert (status, body["error"]) == (404, "unknown_unit")
    limiter = limited.client.server.app[NAME_LOOKUPS]
    assert len(limiter.units) == 0 and len(limiter.conversations) == 0
    assert (await lookup(limited, conversation="typo"))[0] == 200


async def test_only_a_keyed_hash_of_the_conversation_id_is_kept(api: Api) -> None:
    raw = "zalo:6142000000999"
    assert (await lookup(api, conversation=raw))[0] == 200
    limiter = api.client.server.app[NAME_LOOKUPS]
    keys = limiter.conversations.keys()
    assert len(keys) == 1
    assert raw not in repr(limiter.conversations.__dict__) and "6142000000999" not in keys[0]
    assert keys[0] == limiter.conversation_key(raw)
    # Keyed with the service secret: hashing guessed ids without it does not give the key.
    assert keys[0] not in hashlib.sha256(raw.encode()).hexdigest()
    other = NameLookupLimiter("another-secret-key-0123", 5, 600, 60, 60)
    assert other.conversation_key(raw) != keys[0]


def test_memory_stays_bounded() -> None:
    clock = ManualClock(datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc))
    limiter = NameLookupLimiter("secret-for-tests-0123", 5, 600, 10_000, 60, max_keys=100)
    for i in range(1000):  # a flood of fresh conversation ids, one lookup each
        limiter.check("PC05TK", f"conv-{i}", clock.now())
        clock.advance(seconds=0.1)
    assert len(limiter.conversations) == 100
    # The oldest keys went first; the newest are kept.
    assert limiter.conversation_key("conv-999") in limiter.conversations.keys()
    assert limiter.conversation_key("conv-0") not in limiter.conversations.keys()
    # Once their window has passed, idle keys are dropped on the next use.
    clock.advance(seconds=601)
    limiter.check("PC04HC", "conv-after", clock.now())
    assert len(limiter.conversations) == 1 and len(limiter.units) == 1
    # A busy key keeps at most `limit` timestamps.
    window = SlidingWindow(limit=3, window_s=60, max_keys=10)
    for t in range(100):
        if window.retry_after("k", float(t)) == 0:
            window.add("k", float(t))
    assert len(window._hits["k"]) <= 3


def test_limits_are_settings_with_checked_values() -> None:
    base = {"APP_ENV": "test", "SIGNING_SERVICE_TOKEN": TOKEN}
    s = load_settings(base)
    assert (
        s.name_lookups_per_conversation,
        s.name_lookup_conversation_window_s,
        s.name_lookups_per_unit,
        s.name_lookup_unit_window_s,
    ) == (5, 600, 60, 60)
    s = load_settings({**base, "NAME_LOOKUPS_PER_UNIT": "200", "NAME_LOOKUP_UNIT_WINDOW_SECONDS": "120"})
    assert (s.name_lookups_per_unit, s.name_lookup_unit_window_s) == (200, 120)
    for name, value in [
        ("NAME_LOOKUPS_PER_CONVERSATION", "0"),
        ("NAME_LOOKUPS_PER_CONVERSATION", "many"),
        ("NAME_LOOKUP_CONVERSATION_WINDOW_SECONDS", "-5"),
        ("NAME_LOOKUPS_PER_UNIT", "0"),
        ("NAME_LOOKUP_UNIT_WINDOW_SECONDS", "999999"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_settings({**base, name: value})
