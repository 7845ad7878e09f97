"""Where a notice goes (issue 16): Telegram at any time; Zalo inside the window, ZNS outside it
(the real request shape), SMS when neither can be used; temporary errors are retried, permanent
ones recorded. Fake Telegram, Zalo and ZNS APIs; a fake Rasa for the conversation."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import Bot

from common.rasa_client import RasaClient
from connectors.telegram.config import TelegramSettings
from connectors.zalo.api import ZaloApi
from connectors.zalo.config import ZaloSettings
from connectors.zalo.zns import ZnsApi, zns_phone
from notifier.channels import Outcome, Router
from notifier.messages import Messages
from signing_service.deliveries import Job
from signing_service.outbox import FileOutbox
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi
from tests.notifier.conftest import FakeRasa

PHONE = "0905123456"
TEMPLATES = {"step_changed": "231456", "documents_ready": "231457"}


def job(chat_channel: str, chat_user: str, kind: str = "step_changed", phone: str | None = PHONE) -> Job:
    return Job(
        delivery_id=42,
        attempts=0,
        kind=kind,
        chat_channel=chat_channel,
        chat_user=chat_user,
        params={
            "code": "PC05TK0000123",
            "unit": "Điện lực Tam Kỳ",
            "service": "Cấp điện mới sau công tơ (hạ áp)",
            "step": "Nghiệm thu và treo công tơ",
            "documents": "2",
            "document": "Hợp đồng mua bán điện",
            "due_date": "05/12/2026",
            "late_days": "1",
        },
        phone=phone,
        event_at=datetime.now(timezone.utc),
    )


@pytest.fixture
async def router(
    fake_telegram: FakeTelegramApi,
    telegram_settings: TelegramSettings,
    zalo_settings: ZaloSettings,
    fake_rasa: tuple[FakeRasa, str],
    tmp_path: Path,
) -> AsyncIterator[Router]:
    bot = Bot(telegram_settings.bot_token, base_url=telegram_settings.bot_base_url)
    await bot.initialize()
    zalo = ZaloApi(zalo_settings, retry_delays=(), rate_retry_delays=())
    zns = ZnsApi(zalo_settings.api_base_url, zalo)
    http = aiohttp.ClientSession()
    r = Router(
        Messages.from_domain(),
        FileOutbox(tmp_path / "outbox.jsonl"),
        telegram=bot,
        zalo=zalo,
        zns=zns,
        zns_templates=TEMPLATES,
        rasa=RasaClient(http, fake_rasa[1], "rasa-token"),
        zalo_window_s=48 * 3600,
    )
    yield r
    await bot.shutdown()
    await zalo.close()
    await http.close()


def sms(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_telegram_gets_the_notice_with_its_buttons_and_the_conversation_records_it(
    router: Router, fake_telegram: FakeTelegramApi, fake_rasa: tuple[FakeRasa, str]
) -> None:
    assert await router.deliver(job("telegram", "telegram:777001")) == Outcome("sent", "telegram")
    (call,) = fake_telegram.sent("sendMessage", 777001)
    assert "PC05TK0000123" in call.params["text"] and "Nghiệm thu và treo công tơ" in call.params["text"]
    buttons = [row[0] for row in call.params["reply_markup"]["inline_keyboard"]]
    # The payloads name the request: a tap acts on it whatever the chat talked about since.
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        ("Xem tiến độ", '/track_request{"request_code":"PC05TK0000123"}'),
        ("Dừng thông báo", '/notifications_off{"request_code":"PC05TK0000123"}'),
    ]
    rasa, _ = fake_rasa
    (bot,) = rasa.appended["telegram:777001"]  # no slot: it could switch a form's request
    assert bot["event"] == "bot" and bot["text"] == call.params["text"]
    assert bot["metadata"] == {"notice": "step_changed", "delivery_id": 42}
    assert set(rasa.tokens) == {"rasa-token"}


@pytest.mark.parametrize(
    ("code", "description", "retry_after", "expected"),
    [
        (403, "Forbidden: bot was blocked by the user", None, Outcome("failed", "telegram", "blocked")),
        (429, "Too Many Requests: retry after 5", 5, Outcome("retry", "telegram", "flood_control")),
        (502, "Bad Gateway", None, Outcome("retry", "telegram", "NetworkError")),
    ],
)
async def test_telegram_errors_are_retried_or_recorded(
    router: Router,
    fake_telegram: FakeTelegramApi,
    code: int,
    description: str,
    retry_after: int | None,
    expected: Outcome,
) -> None:
    fake_telegram.fail_next("sendMessage", code, description, retry_after)
    assert await router.deliver(job("telegram", "telegram:777002")) == expected


async def test_zalo_inside_the_window_gets_a_customer_service_message(
    router: Router, fake_zalo: FakeZaloApi, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake_rasa[0].last_user_message["zalo:61420001"] = time.time() - 3600
    assert await router.deliver(job("zalo", "zalo:61420001", "documents_ready")) == Outcome("sent", "zalo")
    (call,) = fake_zalo.calls_to("61420001")
    assert "2 hồ sơ đang chờ anh/chị ký" in call.message["text"]
    buttons = call.message["attachment"]["payload"]["buttons"]
    assert [(b["title"], b["type"], b["payload"]) for b in buttons][0] == (
        "Ký hồ sơ",
        "oa.query.hide",
        '/sign_documents{"request_code":"PC05TK0000123"}',
    )
    assert fake_zalo.zns_sent == []


async def test_zalo_outside_the_window_gets_the_zns_template_on_the_registered_phone(
    router: Router, fake_zalo: FakeZaloApi, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake_rasa[0].last_user_message["zalo:61420002"] = time.time() - 3 * 86400
    assert await router.deliver(job("zalo", "zalo:61420002")) == Outcome("sent", "zns")
    assert fake_zalo.calls_to("61420002") == []  # no customer-service message tried
    (zns,) = fake_zalo.zns_sent
    assert (zns.phone, zns.template_id, zns.tracking_id, zns.access_token) == (
        "84905123456",
        "231456",
        "cskh-42",
        "AT-initial",
    )
    assert zns.template_data["code"] == "PC05TK0000123"
    assert zns.template_data["step"] == "Nghiệm thu và treo công tơ"
    assert fake_rasa[0].appended == {}  # not in the chat: nothing written into it


async def test_zalo_refusing_for_the_window_falls_back_to_zns(
    router: Router, fake_zalo: FakeZaloApi, fake_rasa: tuple[FakeRasa, str]
) -> None:
    fake_rasa[0].last_user_message["zalo:61420003"] = time.time() - 60
    fake_zalo.fail_next(-230)
    assert await router.deliver(job("zalo", "zalo:61420003")) == Outcome("sent", "zns")


async def test_zns_refused_or_no_template_falls_back_to_sms(
    router: Router, fake_zalo: FakeZaloApi, tmp_path: Path
) -> None:
    fake_zalo.zns_fail_next(-118)  # the phone has no Zalo account
    assert await router.deliver(job("zalo", "zalo:61420004")) == Outcome("sent", "sms")
    assert await router.deliver(job("zalo", "zalo:61420005", "request_completed")) == Outcome("sent", "sms")
    texts = [m["text"] for m in sms(tmp_path)]
    assert len(texts) == 2 and all(t.startswith("EVNCPC: Yêu cầu PC05TK0000123") for t in texts)  # no emoji
    assert "hoàn thành" in texts[1] and {m["to"] for m in sms(tmp_path)} == {PHONE}


async def test_a_web_chat_gets_sms_and_without_a_phone_the_notice_fails_recorded(
    router: Router, tmp_path: Path
) -> None:
    assert await router.deliver(job("rest", "demo-123")) == Outcome("sent", "sms")
    assert await router.deliver(job("web", "demo-456", phone=None)) == Outcome("failed", None, "no_channel")
    assert len(sms(tmp_path)) == 1


def test_zns_phone_numbers_take_the_international_form() -> None:
    assert zns_phone("0905 123 456") == "84905123456"
    assert zns_phone("+84905123456") == "84905123456"
    assert zns_phone("12345") is None


def test_every_notice_has_its_message_in_the_domain_and_short_payloads() -> None:
    from signing_service import events

    messages = Messages.from_domain()
    for kind in events.KINDS:
        notice = messages.render(kind, job("telegram", "x").params)
        assert "{" not in notice.text, kind  # every field filled
        stop = '/notifications_off{"request_code":"PC05TK0000123"}'
        assert any(b.payload == stop for b in notice.buttons), kind  # a way to stop
        assert all(len(b.payload.encode()) <= 64 for b in notice.buttons), kind  # Telegram callback_data
    with pytest.raises(ValueError, match="utter_notice_"):
        Messages({})


async def test_a_telegram_call_that_timed_out_is_not_repeated(
    router: Router, fake_telegram: FakeTelegramApi
) -> None:
    """The message may have arrived: it is recorded as interrupted rather than sent twice."""
    fake_telegram.send_delay = 6.0  # beyond the client's 5 s read timeout
    assert await router.deliver(job("telegram", "telegram:777003")) == Outcome(
        "uncertain", "telegram", "timed_out"
    )
