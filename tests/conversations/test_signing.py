"""OTP signing over REST; the codes are read from the stack's outbox (the fake SMS/e-mail gateway).

OTP expiry is covered by the signing service's own tests (it needs the service clock moved past
5 minutes); here the bot's handling of an expired code is covered by the action tests' error paths.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.conversations.conftest import Chat, codes_awaiting, last_otp, request_contact, verified_earlier

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_batch_signing_with_wrong_code_and_resend_cooldown(chat: Chat) -> None:
    verified_earlier(chat, "PC05TK0000123")  # a returning customer: signing needs its own code
    await chat.say("PC05TK0000123")
    await chat.say("tôi muốn ký hợp đồng")
    assert "Có 2 giấy tờ đang chờ ký" in chat.text
    await chat.say(chat.payload("Ký tất cả"))
    assert "đọc kỹ dự thảo" in chat.text
    assert len([b for b in chat.buttons if b.get("type") == "web_url"]) == 2
    await chat.say(chat.payload("Tôi đã đọc, hiểu và đồng ý với dự thảo"))
    assert "090****456" in " ".join(b["title"] for b in chat.buttons)
    await chat.say(chat.payload("SMS"))
    assert "Em đã gửi mã OTP" in chat.text and "090****456" in chat.text
    otp = last_otp(chat.stack, "0905123456")
    wrong = "000000" if otp != "000000" else "111111"
    await chat.say(wrong)
    assert "chưa đúng" in chat.text and "4 lần" in chat.text
    await chat.say("gửi lại mã")
    assert "chờ" in chat.text and "giây" in chat.text
    await chat.say(f"mã của mình là {otp[:3]} {otp[3:]} nhé")
    assert "Ký số thành công 2 giấy tờ" in chat.text
    links = [b for b in chat.buttons if b.get("type") == "web_url"]
    signed = [b for b in links if "variant=signed" in b["url"]]
    certificate = [b for b in links if "/certificate/file?" in b["url"]]
    assert len(signed) == 2 and len(certificate) == 1 and len(links) == 3
    assert "/verify" in chat.text  # how to check the files
    async with aiohttp.ClientSession() as session, session.get(signed[0]["url"]) as resp:
        assert resp.status == 200
        assert b"/ByteRange" in await resp.read()  # a PDF signature
    slots = await chat.slots()
    assert slots["otp_code"] is None and slots["signing_session_id"] is None
    # Asking again: everything is signed.
    await chat.say("ký hợp đồng")
    assert "đều đã được ký" in chat.text


async def test_single_document_signing_asked_before_the_request_is_known(chat: Chat) -> None:
    code = codes_awaiting(chat.stack, 2)[2]
    await chat.say("ký số hợp đồng")
    assert "mã yêu cầu" in chat.text
    await chat.say(code.lower())
    assert code in chat.text
    await chat.verify_by_code(request_contact(chat.stack, code))
    assert "Có 2 giấy tờ đang chờ ký" in chat.text
    await chat.say("1")
    await chat.say("Tôi đã đọc, hiểu và đồng ý với dự thảo")
    # The code typed to verify, minutes ago, confirms this signing: no second code.
    assert "Ký số thành công 1 giấy tờ" in chat.text
    await chat.say("xem giấy tờ")
    assert "Đã ký" in chat.text and "Chờ ký" in chat.text


async def test_already_signed(chat: Chat) -> None:
    verified_earlier(chat, "PC04HC0004567")
    await chat.say("PC04HC0004567")
    await chat.say("ký hồ sơ")
    assert "đều đã được ký" in chat.text
    assert all("variant=signed" in b["url"] for b in chat.buttons)


async def test_no_documents_to_sign(chat: Chat) -> None:
    verified_earlier(chat, "PC05TK0000456")
    await chat.say("PC05TK0000456")
    await chat.say("ký hợp đồng")
    assert "chưa có hồ sơ, giấy tờ" in chat.text


async def test_code_elsewhere_is_refused_and_cancel_works(chat: Chat) -> None:
    code = codes_awaiting(chat.stack, 1)[0]
    verified_earlier(chat, code)
    await chat.say(code)
    await chat.say("ký hồ sơ")
    await chat.say("/affirm")
    await chat.say("gửi mã vào số khác cho mình")
    assert "cập nhật" in chat.text
    assert (await chat.slots())["signing_session_id"] is None
    await chat.say("hủy")
    assert "đã hủy" in chat.text
    assert (await chat.slots())["sign_selection"] is None


async def test_usb_token_is_explained_with_the_portal_link(chat: Chat) -> None:
    await chat.say("tôi ký bằng usb token được không")
    assert "EvnSignerClient" in chat.text and "Windows" in chat.text
    assert any(b.get("url") == "https://cskh.cpc.vn" for b in chat.buttons)
