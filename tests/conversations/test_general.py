"""FAQ, out of scope, fallback and the handoff offer over REST."""

from __future__ import annotations

import pytest

from tests.conversations.conftest import Chat

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("số tổng đài chăm sóc khách hàng là bao nhiêu", "1900 1909"),
        ("ky bang otp co gia tri phap ly khong", "20/2023/QH15"),
        ("cấp điện mới mất mấy ngày", "3 ngày làm việc"),
        ("cần chuẩn bị giấy tờ gì để đăng ký điện", "giấy đề nghị mua điện"),
        ("tôi đổi số điện thoại rồi thì làm sao", "cập nhật"),
    ],
)
async def test_faq(chat: Chat, question: str, expected: str) -> None:
    await chat.say(question)
    assert expected in chat.text


async def test_out_of_scope_gives_the_hotline(chat: Chat) -> None:
    await chat.say("giá vàng hôm nay bao nhiêu")
    assert "19001909" in chat.text


async def test_two_fallbacks_offer_a_human_and_yes_hands_off(chat: Chat) -> None:
    await chat.say("qwxz plmk ytrb")
    # Not understood: "please rephrase", or "did you mean" when the model has a faint guess.
    assert "chưa hiểu" in chat.text or "chưa chắc đã hiểu" in chat.text
    await chat.say("zzkq vbnm xqwp")
    assert "nhân viên" in chat.text
    assert "/human_handoff" in {b["payload"] for b in chat.buttons}
    await chat.say("có")
    assert "Em đã chuyển cuộc trò chuyện tới nhân viên tổng đài" in chat.text
    assert (await chat.slots())["handoff_requested"] is True


async def test_handoff_on_request(chat: Chat) -> None:
    await chat.say("cho tôi gặp nhân viên")
    assert "chờ trong giây lát" in chat.text
    assert (await chat.slots())["handoff_requested"] is True


async def test_a_code_is_looked_up_even_with_low_confidence(chat: Chat) -> None:
    await chat.say("uhm PC05HA0000789 ???")
    assert "PC05HA0000789" in chat.text


async def test_a_pasted_200k_character_message_is_answered(chat: Chat) -> None:
    # Without the tokenizer's token cap DIET ran out of memory on this and the turn was dropped.
    await chat.say("tra cứu hồ sơ " * 15_000 + "PC05HA0000789")
    assert "PC05HA0000789" in chat.text
    await chat.say("cảm ơn")
    assert chat.text, "the conversation goes on after the huge message"
