"""Documents and amendments over REST."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conversations.conftest import Chat, codes_awaiting, request_contact, verified_earlier

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_documents_are_listed_with_working_pdf_links(chat: Chat) -> None:
    await chat.say("PC05TK0000123")
    await chat.say("cho mình xem giấy tờ")
    assert not any(b.get("type") == "web_url" for b in chat.buttons)  # not before verification
    await chat.verify_by_code("0905123456")
    assert "Hợp đồng mua bán điện sinh hoạt" in chat.text
    assert "Biên bản thỏa thuận đấu nối" in chat.text
    links = [b for b in chat.buttons if b.get("type") == "web_url"]
    assert len(links) == 2
    async with aiohttp.ClientSession() as session, session.get(links[0]["url"]) as resp:
        assert resp.status == 200
        assert (await resp.read()).startswith(b"%PDF")


async def test_documents_asked_before_the_request_is_known(chat: Chat) -> None:
    await chat.say("xem hồ sơ giấy tờ")
    assert "mã yêu cầu" in chat.text
    await chat.say("PC04HC0004567")
    assert "PC04HC0004567" in chat.text
    await chat.verify_by_code(request_contact(chat.stack, "PC04HC0004567"))
    assert any("variant=signed" in b.get("url", "") for b in chat.buttons)


async def test_no_documents(chat: Chat) -> None:
    verified_earlier(chat, "PC05TK0000456")
    await chat.say("PC05TK0000456")
    await chat.say("xem giấy tờ")
    assert "chưa có hồ sơ, giấy tờ" in chat.text


async def amendments(chat: Chat, code: str) -> list[dict]:
    url = f"{chat.stack.signing_url}/v1/amendments"
    headers = {"Authorization": f"Bearer {chat.stack.token}"}
    async with chat.session.get(url, params={"request_code": code}, headers=headers) as resp:
        assert resp.status == 200
        return list((await resp.json())["amendments"])


async def test_amendment_with_confirmation_and_reference(chat: Chat) -> None:
    code = codes_awaiting(chat.stack, 2)[0]
    verified_earlier(chat, code)
    await chat.say(code)
    await chat.say("yêu cầu hiệu chỉnh hợp đồng")
    assert "giấy tờ nào" in chat.text
    assert [b["payload"] for b in chat.buttons if b["payload"] != "/cancel"] == ["1", "2"]
    await chat.say("2")
    assert "mô tả nội dung cần hiệu chỉnh" in chat.text
    await chat.say("Sai địa chỉ, số nhà đúng là 12 Phan Chu Trinh")
    assert "xác nhận" in chat.text and "12 Phan Chu Trinh" in chat.text
    await chat.say(chat.payload("Gửi yêu cầu"))
    assert "Mã tham chiếu" in chat.text
    saved = await amendments(chat, code)
    assert len(saved) == 1 and "12 Phan Chu Trinh" in saved[0]["text"]
    assert saved[0]["reference"] in chat.text


@pytest.mark.parametrize("when", ["at_choice", "at_text", "at_confirm"])
async def test_amendment_can_be_cancelled_at_every_step(chat: Chat, when: str) -> None:
    code = codes_awaiting(chat.stack, 2)[1]
    verified_earlier(chat, code)
    await chat.say(code)
    await chat.say("hợp đồng ghi sai thông tin, muốn sửa")
    if when != "at_choice":
        await chat.say("1")
    if when == "at_confirm":
        await chat.say("Sai tên chủ hộ")
        await chat.say(chat.payload("Hủy"))
    else:
        await chat.say("thôi hủy")
    assert "đã hủy" in chat.text
    assert await amendments(chat, code) == []
    assert (await chat.slots())["amend_text"] is None
