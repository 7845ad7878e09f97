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


async def test_a_hesitating_model_offers_its_two_guesses_as_buttons(chat: Chat) -> None:
    """action_nlu_fallback builds its buttons from the domain's responses, which Rasa sends only to
    the actions marked `send_domain: true` (endpoints.yml: enable_selective_domain). A user message
    on which the model hesitated between two intents is put on the tracker through Rasa's API, then
    Rasa runs the action as after any fallback."""
    await chat.say("xin chào")  # a session exists: /execute would otherwise start one, forgetting it
    base = f"{chat.stack.rasa_url}/conversations/{chat.sender_id}"
    params = {"token": chat.stack.rasa_token}
    hesitation = {
        "event": "user",
        "text": "cái hồ sơ của tui sao rồi, ký được chưa",
        "parse_data": {
            "intent": {"name": "nlu_fallback", "confidence": 0.5},
            "intent_ranking": [
                {"name": "nlu_fallback", "confidence": 0.5},
                {"name": "track_request", "confidence": 0.41},
                {"name": "sign_documents", "confidence": 0.38},
            ],
            "entities": [],
        },
    }
    async with chat.session.post(f"{base}/tracker/events", params=params, json=[hesitation]) as resp:
        assert resp.status == 200, await resp.text()
    async with chat.session.post(
        f"{base}/execute", params=params, json={"name": "action_nlu_fallback"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        messages = (await resp.json())["messages"]
    assert [m.get("text") for m in messages] == ["Em chưa chắc đã hiểu đúng. Ý anh/chị là:"]
    assert [(b["title"], b["payload"]) for b in messages[0]["buttons"]] == [
        ("Tra cứu tiến độ yêu cầu", "/track_request"),
        ("Ký hồ sơ bằng mã OTP", "/sign_documents"),
        ("Không phải các ý trên", "/help"),
    ]
