"""Finding a request over REST against the real Rasa server, action server and signing service."""

from __future__ import annotations

import pytest

from tests.conversations.conftest import Chat

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_greeting_offers_capabilities_as_buttons(chat: Chat) -> None:
    await chat.say("xin chào")
    payloads = {b["payload"] for b in chat.buttons}
    assert {"/track_request", "/sign_documents", "/view_documents", "/human_handoff"} <= payloads
    assert "anh/chị" in chat.text


@pytest.mark.parametrize(
    "message",
    [
        "tra cứu hồ sơ PC05TK0000123",
        "tra cuu ho so pc05tk 0000123",
        "PC05-TK-0000123",
        "kiem tra giup e ma pc05tk0000123",
    ],
)
async def test_find_by_code_with_and_without_diacritics(chat: Chat, message: str) -> None:
    await chat.say(message)
    assert "PC05TK0000123" in chat.text
    assert "Bước hiện tại: Ký hợp đồng" in chat.text
    assert "✔ Tiếp nhận yêu cầu" in chat.text
    assert "trễ hạn" not in chat.text
    assert "/sign_documents" in {b["payload"] for b in chat.buttons}
    assert (await chat.slots())["request_code"] == "PC05TK0000123"


async def test_find_by_unit_and_name_with_two_same_name_customers(chat: Chat) -> None:
    await chat.say("tôi muốn tra cứu tiến độ hồ sơ")
    assert "mã yêu cầu" in chat.text
    await chat.say("dien luc tam ky")
    assert "họ tên" in chat.text
    await chat.say("nguyen van an")
    assert "2 yêu cầu" in chat.text
    titles = [b["title"] for b in chat.buttons]
    assert len(titles) == 2 and all("Nguyễn V** A*" in t for t in titles)
    assert not any("PC05" in b["payload"] or "PC05" in b["title"] for b in chat.buttons)
    picked = set()
    for payload in [b["payload"] for b in chat.buttons]:
        await chat.say(payload)
        assert "PC05TK****" in chat.text and "PC05TK0000" not in chat.text  # the code stays masked
        picked.add((await chat.slots())["request_code"])
    assert picked == {"PC05TK0000123", "PC05TK0000456"}


async def test_name_and_unit_in_one_message(chat: Chat) -> None:
    await chat.say("tra cứu hồ sơ của Trần Thị Bích Ngọc ở Điện lực Hải Châu")
    assert "PC04HC****567" in chat.text and "PC04HC0004567" not in chat.text  # found by name: masked
    assert "hoàn thành" in chat.text


async def test_unknown_code_says_so_and_offers_retry(chat: Chat) -> None:
    await chat.say("PC05TK0009999")
    assert "không tìm thấy" in chat.text
    assert "/track_request" in {b["payload"] for b in chat.buttons}


async def test_unknown_name_says_so(chat: Chat) -> None:
    await chat.say("tra cứu theo tên khách hàng")
    await chat.say("Điện lực Hội An")
    await chat.say("Zzz Yyy Xxx")
    assert "không tìm thấy" in chat.text


async def test_late_request(chat: Chat) -> None:
    await chat.say("tien do ho so PC05HA0000789 sao roi")
    assert "PC05HA0000789" in chat.text
    assert "Bước hiện tại: Thi công" in chat.text
    assert "trễ hạn" in chat.text


async def test_cancel_the_lookup_form(chat: Chat) -> None:
    await chat.say("tra cứu hồ sơ")
    await chat.say("hủy")
    assert "đã hủy" in chat.text
    slots = await chat.slots()
    assert slots["requested_slot"] is None and slots["power_unit"] is None
