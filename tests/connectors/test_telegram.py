"""Telegram channel on python-telegram-bot against the fake Bot API (real Sanic server)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from rasa.shared.core.domain import Domain

from common.shared_contact import METADATA_KEY, REQUEST_CONTACT_BUTTON, SHARE_CONTACT_TEXT
from connectors.common.canned import PRIVATE_CHAT_ONLY_TEXT
from connectors.telegram import poll, setup_webhook
from connectors.telegram.callbacks import CallbackPayloads
from connectors.telegram.channel import TelegramInput
from connectors.telegram.config import TelegramSettings, derived_secret, make_bot
from connectors.telegram.output import TelegramSender, chat_id_of
from tests.connectors.conftest import TG_SECRET
from tests.connectors.fakes import FakeTelegramApi
from tests.connectors.harness import Recorder, serve
from tests.connectors.tg_helpers import (
    callback_update,
    contact_update,
    in_chat,
    sticker_update,
    text_update,
)

CHAT = 700000001
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}


def read_failures(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def channel(settings: TelegramSettings) -> TelegramInput:
    sender = TelegramSender(settings, make_bot(settings), CallbackPayloads(), retry_delays=(0.05, 0.1))
    return TelegramInput(settings, sender)


async def post(url: str, update: dict, headers: dict[str, str] = HEADERS) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/webhook", data=json.dumps(update), headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_secret_token_is_required(telegram_settings: TelegramSettings) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        update = text_update(CHAT, "xin chào")
        assert (await post(url, update, {}))[0] == 403
        assert (await post(url, update, {**HEADERS, "X-Telegram-Bot-Api-Secret-Token": "wrong"}))[0] == 403
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/webhook", data=b"{oops", headers=HEADERS) as r:
                assert r.status == 400
        assert (await post(url, {"message": update["message"]}))[0] == 400  # no update_id
        assert (await post(url, {"update_id": 5, "message": {"text": "no chat"}}))[0] == 400
        assert (await post(url, update))[0] == 200
        [msg] = await rec.wait_for(1)
    assert (msg.text, msg.sender_id, msg.input_channel) == ("xin chào", f"telegram:{CHAT}", "telegram")


async def test_duplicate_updates_are_dropped_and_edits_ignored(telegram_settings: TelegramSettings) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        update = text_update(CHAT, "một lần thôi")
        assert [(await post(url, update))[1]["status"] for _ in range(3)] == [
            "accepted",
            "duplicate",
            "duplicate",
        ]
        edited = {"update_id": update["update_id"] + 1, "edited_message": update["message"]}
        assert (await post(url, edited))[1]["status"] == "ignored"
        await rec.wait_for(1)
    assert len(rec.messages) == 1


async def test_start_deep_link_prefills_the_request_code(telegram_settings: TelegramSettings) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        await post(url, text_update(CHAT, "/start PC05TK0000123"))
        await post(url, text_update(CHAT + 1, "/start"))
        await post(url, text_update(CHAT + 2, "/start xyz"))
        await post(url, text_update(CHAT + 3, "/help@cskh_test_bot"))
        await rec.wait_for(4)
    assert sorted(m.text for m in rec.messages) == sorted(["PC05TK0000123", "/greet", "/greet", "/help"])


async def test_button_press_is_answered_and_sent_as_the_payload(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        await post(url, callback_update(CHAT, "/sign_documents"))
        [msg] = await rec.wait_for(1)
    assert msg.text == "/sign_documents" and msg.metadata["telegram"]["kind"] == "callback"
    [answer] = fake_telegram.sent("answerCallbackQuery")
    assert answer.params["callback_query_id"].startswith("cq")


async def test_long_payloads_round_trip_through_callback_data(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    ch = channel(telegram_settings)
    long_payload = '/inform{"request_code": "PC05TK0000123", "customer_name": "Nguyễn Văn An"}'
    rec = Recorder()
    async with serve(ch, rec) as url:
        out = ch.get_output_channel()
        assert out is not None
        await out.send_response(
            f"telegram:{CHAT}", {"text": "Chọn", "buttons": [{"title": "An", "payload": long_payload}]}
        )
        [sent] = fake_telegram.sent("sendMessage", CHAT)
        data = sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        assert len(data.encode()) <= 64
        await post(url, callback_update(CHAT, data))
        [msg] = await rec.wait_for(1)
    assert msg.text == long_payload


async def test_stickers_get_the_domain_answer(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    domain = Domain.from_dict(
        {"responses": {"utter_unsupported_content": [{"text": "Tôi chỉ đọc được văn bản."}]}}
    )
    rec = Recorder()
    async with serve(channel(telegram_settings), rec, {"agent": SimpleNamespace(domain=domain)}) as url:
        await post(url, sticker_update(CHAT))
    assert fake_telegram.texts_to(CHAT) == ["Tôi chỉ đọc được văn bản."]
    assert rec.messages == []


async def test_replies_escape_html_split_at_4096_and_use_inline_keyboards(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    text = "Điều <b>khoản</b> & điều kiện. " + "Nội dung dài. " * 400
    buttons = [
        {"title": "Đồng ý", "payload": "/affirm"},
        {"title": "Xem hướng dẫn", "url": "https://cskh.cpc.vn"},
    ]
    await out.send_response(f"telegram:{CHAT}", {"text": text, "buttons": buttons})
    sent = fake_telegram.sent("sendMessage", CHAT)
    assert len(sent) == 2 and all(len(c.params["text"]) <= 4096 + 100 for c in sent)
    assert sent[0].params["text"].startswith("Điều &lt;b&gt;khoản&lt;/b&gt; &amp; điều kiện.")
    assert sent[0].params["parse_mode"] == "HTML" and "reply_markup" not in sent[0].params
    keyboard = sent[1].params["reply_markup"]["inline_keyboard"]
    assert keyboard == [
        [{"text": "Đồng ý", "callback_data": "/affirm"}],
        [{"text": "Xem hướng dẫn", "url": "https://cskh.cpc.vn"}],
    ]


async def test_documents_are_sent_as_files_with_the_link(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    docs = [
        {"title": "Hợp đồng <HĐMBĐ>", "url": "https://ky.evn.vn/v1/documents/1/file?a=1&sig=x"},
        {"title": "Biên bản", "url": "https://ky.evn.vn/v1/documents/2/file?sig=y"},
    ]
    fake_telegram.fail_next("sendDocument", 400, "Bad Request: wrong HTTP URL specified")
    await out.send_response(f"telegram:{CHAT}", {"custom": {"documents": docs}})
    documents = fake_telegram.sent("sendDocument", CHAT)
    assert [d.params["document"] for d in documents] == [docs[0]["url"], docs[1]["url"]]
    assert (
        documents[1].params["caption"] == '<a href="https://ky.evn.vn/v1/documents/2/file?sig=y">Biên bản</a>'
    )
    # The first file could not be fetched by Telegram: its link was sent as a message instead.
    [fallback] = fake_telegram.sent("sendMessage", CHAT)
    assert fallback.params["text"] == (
        '<a href="https://ky.evn.vn/v1/documents/1/file?a=1&amp;sig=x">Hợp đồng &lt;HĐMBĐ&gt;</a>'
    )


async def test_flood_control_is_waited_out_and_blocked_users_recorded(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi, failures_file: Path
) -> None:
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    fake_telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    started = time.monotonic()
    await out.send_response(f"telegram:{CHAT}", {"text": "sau khi chờ"})
    assert time.monotonic() - started >= 0.9
    assert fake_telegram.texts_to(CHAT)[-1] == "sau khi chờ"
    fake_telegram.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    await out.send_response(f"telegram:{CHAT}", {"text": "không tới"})
    [record] = read_failures(failures_file)
    assert (record["channel"], record["reason"], record["message"]["text"]) == (
        "telegram",
        "blocked",
        "không tới",
    )


async def test_polling_relays_updates_to_the_same_webhook(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        rasa_url = url.rsplit("/webhooks/", 1)[0]
        first, second = text_update(CHAT, "qua polling"), callback_update(CHAT, "/affirm")
        fake_telegram.push_update(first)
        fake_telegram.push_update(second)
        await poll.run(telegram_settings, rasa_url, timeout=1, once=True)
        await rec.wait_for(2)
        assert fake_telegram.sent("deleteWebhook")
        # A restarted relay fetches the unconfirmed updates again: the webhook drops them.
        await poll.run(telegram_settings, rasa_url, timeout=0, once=True)
        # Within one run the offset moves past relayed updates, which confirms them to Telegram.
        bot = make_bot(telegram_settings)
        async with bot, aiohttp.ClientSession() as http:
            webhook = rasa_url + setup_webhook.WEBHOOK_PATH
            offset = await poll.relay_once(bot, http, webhook, TG_SECRET, None, 0)
            assert offset == second["update_id"] + 1
            assert await poll.relay_once(bot, http, webhook, TG_SECRET, offset, 0) == offset
    assert [m.text for m in rec.messages] == ["qua polling", "/affirm"]
    assert int(fake_telegram.sent("getUpdates")[-1].params["offset"]) == second["update_id"] + 1


async def test_setup_webhook_registers_url_and_secret(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    result = await setup_webhook.run(
        "https://bot.example.vn/webhooks/telegram/webhook", False, telegram_settings
    )
    assert "https://bot.example.vn/webhooks/telegram/webhook" in result
    [call] = fake_telegram.sent("setWebhook")
    assert call.params["secret_token"] == TG_SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    with pytest.raises(SystemExit):
        await setup_webhook.run("http://insecure", False, telegram_settings)


def test_settings_from_env() -> None:
    token = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
    assert TelegramSettings.from_env({}) is None
    dev = TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": token})
    assert dev is not None and dev.secret_token == derived_secret(token)
    with pytest.raises(ValueError, match="TELEGRAM_SECRET_TOKEN is required"):
        TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": token, "APP_ENV": "production"})
    with pytest.raises(ValueError, match="1-256 characters"):
        TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_SECRET_TOKEN": "bad secret!"})
    with pytest.raises(ValueError, match="https"):
        TelegramSettings.from_env(
            {
                "TELEGRAM_BOT_TOKEN": token,
                "TELEGRAM_SECRET_TOKEN": "s",
                "APP_ENV": "production",
                "TELEGRAM_API_BASE_URL": "http://127.0.0.1:1",
            }
        )


async def test_document_link_buttons_from_the_bot_are_also_sent_as_files(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    url = "http://127.0.0.1:8800/v1/documents/12/file?variant=signed&expires=1&sig=ab"
    buttons = [
        {"title": "✅ Hợp đồng mua bán điện", "payload": url, "type": "web_url", "url": url},
        {"title": "Cổng CSKH", "url": "https://cskh.cpc.vn/"},
    ]
    await out.send_response(f"telegram:{CHAT}", {"text": "Đã ký xong.", "buttons": buttons})
    [message] = fake_telegram.sent("sendMessage", CHAT)
    assert [row[0]["url"] for row in message.params["reply_markup"]["inline_keyboard"]] == [
        url,
        "https://cskh.cpc.vn/",
    ]
    [document] = fake_telegram.sent("sendDocument", CHAT)
    assert document.params["document"] == url
    assert (
        "Hợp đồng mua bán điện" in document.params["caption"] and "&amp;sig=ab" in document.params["caption"]
    )


async def test_no_token_or_message_text_in_logs(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ch = channel(telegram_settings)
    rec = Recorder(reply={"text": "Mã yêu cầu của anh/chị: PC05TK0000123, SĐT 0905123456"})
    async with serve(ch, rec) as url:
        await post(url, text_update(CHAT, "số tôi là 0905123456"))
        await rec.wait_for(1)
    assert fake_telegram.texts_to(CHAT)
    secret_part = telegram_settings.bot_token.split(":")[1]
    assert secret_part not in caplog.text and TG_SECRET not in caplog.text
    assert "0905123456" not in caplog.text and str(CHAT) not in caplog.text


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "message": {"chat": "not an object", "text": "x"}},
        {"update_id": 2, "callback_query": {"id": "q", "message": [], "from": 5}},
        {"update_id": "3", "message": {}},
        [],
    ],
)
async def test_odd_updates_are_refused_with_400_not_500(
    telegram_settings: TelegramSettings, update: object
) -> None:
    async with serve(channel(telegram_settings), Recorder()) as url:
        assert (await post(url, update))[0] == 400  # type: ignore[arg-type]


async def test_own_contact_is_relayed_as_share_contact_with_the_number(
    telegram_settings: TelegramSettings,
) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        assert (await post(url, contact_update(CHAT, "+84905123456", user_id=CHAT)))[0] == 200
        [msg] = await rec.wait_for(1)
    assert (msg.text, msg.sender_id) == (SHARE_CONTACT_TEXT, f"telegram:{CHAT}")
    assert msg.metadata[METADATA_KEY] == {
        "phone": "+84905123456",
        "source": "telegram_contact",
        "own_number": True,
    }
    assert msg.metadata["telegram"]["kind"] == "contact"


@pytest.mark.parametrize("owner", [CHAT + 1, None], ids=["someone_else", "not_a_telegram_user"])
async def test_someone_elses_contact_carries_no_number(
    telegram_settings: TelegramSettings, owner: int | None
) -> None:
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        await post(url, contact_update(CHAT, "+84905999999", user_id=owner))
        [msg] = await rec.wait_for(1)
    assert msg.text == SHARE_CONTACT_TEXT
    assert msg.metadata[METADATA_KEY] == {"phone": None, "source": "telegram_contact", "own_number": False}


async def test_request_contact_button_is_a_one_time_reply_keyboard_other_buttons_follow_inline(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    share = {"title": "📱 Chia sẻ số điện thoại", "type": REQUEST_CONTACT_BUTTON, "payload": "/share_contact"}
    other = {"title": "Nhập số khác", "payload": "/deny"}
    await out.send_response(f"telegram:{CHAT}", {"text": "Xác minh số điện thoại", "buttons": [share, other]})
    first, second = fake_telegram.sent("sendMessage", CHAT)
    assert first.params["text"] == "Xác minh số điện thoại"
    assert first.params["reply_markup"] == {
        "keyboard": [[{"text": "📱 Chia sẻ số điện thoại", "request_contact": True}]],
        "one_time_keyboard": True,
        "resize_keyboard": True,
    }
    assert second.params["text"] == "…"
    assert second.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "Nhập số khác", "callback_data": "/deny"}]]
    }
    # A request_contact button alone: the keyboard rides on the text, no inline follow-up.
    await out.send_response(f"telegram:{CHAT + 1}", {"text": "Chia sẻ số", "buttons": [share]})
    [only] = fake_telegram.sent("sendMessage", CHAT + 1)
    assert only.params["reply_markup"]["keyboard"][0][0]["request_contact"] is True


async def test_the_next_bot_message_removes_the_reply_keyboard_after_a_contact(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    ch = channel(telegram_settings)
    out = ch.get_output_channel()
    assert out is not None
    rec = Recorder(reply={"text": "Đã nhận", "buttons": [{"title": "Tiếp tục", "payload": "/affirm"}]})
    async with serve(ch, rec) as url:
        await post(url, contact_update(CHAT, "+84905123456", user_id=CHAT))
        await rec.wait_for(1)
    # The answer to the contact carries an inline keyboard (one keyboard per message): the removal
    # waits for the next message without one, and happens once.
    [answer] = fake_telegram.sent("sendMessage", CHAT)
    assert "inline_keyboard" in answer.params["reply_markup"]
    await out.send_response(f"telegram:{CHAT}", {"text": "Mời anh/chị chọn"})
    await out.send_response(f"telegram:{CHAT}", {"text": "Cảm ơn"})
    _, removal, after = fake_telegram.sent("sendMessage", CHAT)
    assert removal.params["reply_markup"] == {"remove_keyboard": True}
    assert "reply_markup" not in after.params


async def test_group_updates_never_reach_the_bot_and_the_group_is_told_once(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    group, supergroup, chan = -4001, -1002003004, -1009008007
    rec = Recorder()
    async with serve(channel(telegram_settings), rec) as url:
        updates = [
            in_chat(text_update(CHAT, "tra cứu PC05TK0000123"), group, "group"),
            in_chat(text_update(CHAT, "số tôi 0905123456"), group, "group"),
            in_chat(contact_update(CHAT, "+84905123456", user_id=CHAT), group, "group"),
            in_chat(callback_update(CHAT, "/affirm"), supergroup, "supergroup"),
            in_chat(text_update(CHAT, "/start PC05TK0000123"), supergroup, "supergroup"),
            in_chat(text_update(CHAT, "bài đăng"), chan, "channel"),
        ]
        for update in updates:
            assert (await post(url, update))[0] == 200
        # The same text in the private chat still reaches the bot.
        await post(url, text_update(CHAT, "tra cứu PC05TK0000123"))
        [msg] = await rec.wait_for(1)
    assert msg.sender_id == f"telegram:{CHAT}"
    for chat in (group, supergroup, chan):
        assert fake_telegram.texts_to(chat) == [PRIVATE_CHAT_ONLY_TEXT]
    assert not fake_telegram.sent("answerCallbackQuery")


def test_only_ascii_chat_ids_are_telegram_conversations() -> None:
    assert chat_id_of("telegram:-1002003004") == -1002003004 and chat_id_of("700000001") == 700000001
    for sender in ("telegram:١٢٣", "telegram:１２３", "telegram:²", "telegram:", "telegram:1 "):
        with pytest.raises(ValueError):
            chat_id_of(sender)
