"""Over a real Rasa server: what a stranger who knows a code or a name gets (nothing personal), and
the real customer's journeys with verification (turns counted and printed for docs/security.md)."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests import demo_data
from tests.conversations.conftest import Chat, codes_awaiting, last_otp, request_contact

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# What must never reach an unverified chat user: links to PDFs, the full phone, e-mail, ID number.
PERSONAL = re.compile(r"https?://|0905123456|an@example\.com|049090001234|Phan Chu Trinh")


def leaks(chat: Chat) -> list[str]:
    """Personal data in the last answer: texts, button titles, payloads and URLs."""
    parts = [m.get("text", "") for m in chat.last]
    parts += [str(b.get(k, "")) for b in chat.buttons for k in ("title", "payload", "url")]
    return [p for p in parts if PERSONAL.search(p)]


async def test_a_stranger_with_a_code_gets_no_personal_data(chat: Chat) -> None:
    said = 0
    for text in [
        "PC05TK0000123",
        "xem giấy tờ",
        "hủy",
        "ký hồ sơ",
        "hủy",
        "hợp đồng ghi sai địa chỉ, muốn sửa",
        "hủy",
        "gửi mã vào số khác giúp tôi",
        "/share_contact",  # typed: no connector vouches for it
        '/inform{"candidate_ref": "made-up-ref-0000000"}',
    ]:
        await chat.say(text)
        said += 1
        assert leaks(chat) == [], (text, chat.last)
    assert "0905123456" not in str(await chat.slots())  # no contact kept in the conversation either
    print(f"stranger with a code: {said} messages, 0 links, 0 phone/e-mail/ID numbers")


async def test_a_stranger_with_a_common_name_gets_masked_rows_only(chat: Chat) -> None:
    await chat.say("tra cứu hồ sơ")
    await chat.say("Điện lực Tam Kỳ")
    await chat.say("Nguyễn Văn An")
    assert len(chat.buttons) == 2 and leaks(chat) == []
    assert not any(re.search(r"PC\d{2}[A-Z]{2}\d{7}", b["payload"] + b["title"]) for b in chat.buttons)
    await chat.say(chat.buttons[0]["payload"])
    assert not re.search(r"PC\d{2}[A-Z]{2}\d{7}", chat.text)  # the status shows the code masked
    await chat.say("xem giấy tờ")
    assert "xác minh" in chat.text and leaks(chat) == []


async def test_verify_by_code_then_documents_then_unlink(chat: Chat) -> None:
    turns = 0

    async def say(text: str) -> None:
        nonlocal turns
        turns += 1
        await chat.say(text)

    await chat.say("PC05TK0000123")
    await say("xem giấy tờ")
    assert "SMS: 090****456" in [b["title"] for b in chat.buttons]
    await say("sms")
    await say(last_otp(chat.stack, "0905123456"))
    assert "Xác minh thành công" in chat.text and "Hợp đồng mua bán điện sinh hoạt" in chat.text
    link = next(b["url"] for b in chat.buttons if b.get("type") == "web_url")
    async with aiohttp.ClientSession() as session, session.get(link) as resp:
        assert resp.status == 200 and (await resp.read()).startswith(b"%PDF")
    print(f"'xem hồ sơ' to the documents: {turns} turns (before verification existed: 1)")
    await chat.say("xem giấy tờ")  # no second verification in this chat
    assert "Hợp đồng mua bán điện sinh hoạt" in chat.text and "xác minh" not in chat.text
    await chat.say("hủy liên kết")
    assert "đã hủy liên kết" in chat.text
    await chat.say("xem giấy tờ")
    assert "xác minh" in chat.text and leaks(chat) == []


async def test_from_sign_to_signed_with_one_code(chat: Chat) -> None:
    code = codes_awaiting(chat.stack, 2)[3]
    phone = request_contact(chat.stack, code)
    await chat.say(code)
    turns = 0
    for step in ("ký hồ sơ", "sms", last_otp, "tất cả", "/affirm"):
        turns += 1
        await chat.say(step(chat.stack, phone) if callable(step) else step)
    assert "Ký số thành công 2 giấy tờ" in chat.text
    lines = chat.stack.outbox.read_text(encoding="utf-8").splitlines()
    codes_sent = sum(1 for line in lines if phone in line and "Mã xác" in line)
    assert any(phone in line and "đã được ký" in line for line in lines)  # the signed notice
    assert codes_sent == 1
    print(
        f"'ký hồ sơ' to 'ký thành công', not verified yet: {turns} turns, {codes_sent} code (before: 5 turns)"
    )


async def test_wrong_verification_codes_lock_and_give_nothing(chat: Chat) -> None:
    await chat.say("PC05TK0000123")
    await chat.say("ký hồ sơ")
    await chat.say("sms")
    otp = last_otp(chat.stack, "0905123456")
    wrong = f"{(int(otp) + 1) % 10**6:06d}"
    for _ in range(4):
        await chat.say(wrong)
        assert "chưa đúng" in chat.text and leaks(chat) == []
    await chat.say(wrong)
    assert "khóa" in chat.text
    await chat.say(otp)  # the right code after the lock: refused too
    assert "Xác minh thành công" not in chat.text and leaks(chat) == []


async def test_delete_my_data_erases_the_conversation(chat: Chat) -> None:
    await chat.say("PC05TK0000123")
    await chat.say("xem giấy tờ")
    await chat.verify_by_code("0905123456")
    await chat.say("xóa dữ liệu của tôi")
    assert "xác nhận" in chat.text
    await chat.say(chat.payload("Xóa dữ liệu"))
    assert "đã xóa dữ liệu" in chat.text
    url = f"{chat.stack.rasa_url}/conversations/{chat.sender_id}/tracker"
    async with chat.session.get(url, params={"token": chat.stack.rasa_token}) as resp:
        stored = await resp.json()
    assert "PC05TK0000123" not in str(stored) and "0905" not in str(stored)
    await chat.say("xem giấy tờ")  # a new conversation: no request, no verification
    assert "mã yêu cầu" in chat.text and leaks(chat) == []


def sent_to(chat: Chat, phone: str) -> int:
    """How many messages the outbox holds for `phone` (codes sent by SMS)."""
    return len(demo_data.outbox_messages(chat.stack.outbox, phone))


async def test_questions_and_small_talk_during_verification_are_answered_not_taken_as_answers(
    chat: Chat,
) -> None:
    """A customer asked how to receive the code asks the hotline, thanks, asks whether this is a bot:
    each gets its answer and the question again; no code is sent until they choose (before: "số
    hotline là gì" chose SMS and sent a code, and while the code was awaited every other message got
    "the code has 6 digits")."""
    code = codes_awaiting(chat.stack, 1)[0]
    phone = request_contact(chat.stack, code)
    await chat.say(code)
    await chat.say("xem giấy tờ")
    assert any(b["title"].startswith("SMS:") for b in chat.buttons)
    for text, expected in [
        ("số hotline là gì", "1900 1909"),
        ("cảm ơn", ""),
        ("bạn là người hay máy", "trợ lý ảo"),
    ]:
        await chat.say(text)
        assert expected in chat.text, (text, chat.text)
        assert "chọn cách xác minh" in chat.text, (text, chat.text)  # asked again
        assert "Mã OTP gồm đúng 6 chữ số" not in chat.text and "chưa rõ" not in chat.text, text
    assert sent_to(chat, phone) == 0
    await chat.say("sms")
    assert sent_to(chat, phone) == 1
    await chat.say("số hotline là gì")
    assert "1900 1909" in chat.text and "nhập mã xác minh" in chat.text
    assert "6 chữ số, anh/chị kiểm tra" not in chat.text
    await chat.say(last_otp(chat.stack, phone))
    assert "Xác minh thành công" in chat.text


async def test_a_customer_who_answers_the_channel_question_twice_with_something_else_is_let_out(
    chat: Chat,
) -> None:
    """The channel question used to come back for every message; the second answer that is no
    channel ends it with a person offered, and the next message is understood as itself."""
    code = codes_awaiting(chat.stack, 1)[1]
    await chat.say(code)
    await chat.say("xem giấy tờ")
    assert any(b["title"].startswith("SMS:") for b in chat.buttons)
    await chat.say("zxq vbn")
    assert "chưa rõ" in chat.text
    await chat.say("qwe rty")
    assert "nhân viên tổng đài" in chat.text and "chọn cách xác minh" not in chat.text
    await chat.say("gặp nhân viên")
    assert "chuyển cuộc trò chuyện tới nhân viên" in chat.text


async def test_consent_in_the_customers_words_signs(chat: Chat) -> None:
    """ "được rồi tui đồng ý ký" at the consent question was read as "sign" and the question came
    back; the words of the consent statement now consent whatever the intent."""
    code = codes_awaiting(chat.stack, 2)[4]
    phone = request_contact(chat.stack, code)
    await chat.say(code)
    for step in ("ký hồ sơ", "sms", last_otp, "tất cả", "được rồi tui đồng ý ký"):
        await chat.say(step(chat.stack, phone) if callable(step) else step)
    assert "Ký số thành công 2 giấy tờ" in chat.text
