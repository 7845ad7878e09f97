"""Zalo webhook: MAC check, fast acknowledgement, dedupe, event classes (real Sanic server)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from rasa.shared.core.domain import Domain

from common.shared_contact import METADATA_KEY, SHARE_CONTACT_TEXT
from connectors.zalo.channel import MAX_CLOCK_SKEW, MAX_EVENT_AGE, ZaloInput
from connectors.zalo.config import ZaloSettings
from connectors.zalo.signature import compute_mac
from tests.connectors.conftest import ZALO_APP_ID, ZALO_OA_SECRET
from tests.connectors.fakes import FakeZaloApi
from tests.connectors.harness import Recorder, serve
from tests.connectors.zalo_helpers import event, signed


async def post(url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(url + "/webhook", data=raw, headers=headers) as r:
        return r.status, await r.json()


async def test_signed_text_is_acknowledged_and_reaches_the_bot_as_the_user(
    zalo_settings: ZaloSettings,
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_text", text="  Tra cứu PC05TK0000123 ", msg_id="m-1")
        status, reply = await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        assert (status, reply["status"]) == (200, "accepted")
        [msg] = await rec.wait_for(1)
    assert msg.text == "Tra cứu PC05TK0000123"
    assert msg.sender_id == "zalo:6142000000001"
    assert msg.input_channel == "zalo" and msg.message_id == "m-1"
    assert msg.metadata == {"zalo": {"event": "user_send_text"}, "request_id": msg.metadata["request_id"]}


async def test_forged_missing_and_malformed_deliveries_are_refused(zalo_settings: ZaloSettings) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_text", text="xin chào")
        raw, headers = signed(body, ZALO_APP_ID, "wrong-secret")
        assert (await post(url, raw, headers))[0] == 403
        raw, headers = signed(body, ZALO_APP_ID, ZALO_OA_SECRET)
        tampered = raw.replace("xin chào".encode(), "tạm biệt".encode())
        assert (await post(url, tampered, headers))[0] == 403
        assert (await post(url, raw, {"Content-Type": "application/json"}))[0] == 403
        assert (await post(url, raw, {"X-ZEvent-Signature": "mac=" + "0" * 64}))[0] == 403
        status, reply = await post(url, b"{not json", {"X-ZEvent-Signature": "mac=" + "0" * 64})
        assert (status, reply["error"]) == (400, "malformed_json")
        no_msg_id = event("user_send_text", text="x")
        del no_msg_id["message"]["msg_id"]
        assert (await post(url, *signed(no_msg_id, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 400
        # Zalo's unsigned probe when the webhook URL is saved gets a harmless 200.
        assert (await post(url, b"{}", {}))[0] == 200
    assert rec.messages == []


async def test_header_timestamp_variant_is_accepted(zalo_settings: ZaloSettings) -> None:
    """Some deliveries sign with the X-ZEvent-Timestamp header value instead of the body's."""
    rec = Recorder()
    now_ms = int(time.time() * 1000)
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = {**event("user_send_text", text="chào"), "timestamp": str(now_ms + 999)}
        raw = json.dumps(body).encode()
        headers = {
            "X-ZEvent-Signature": compute_mac(ZALO_APP_ID, raw, str(now_ms), ZALO_OA_SECRET),
            "X-ZEvent-Timestamp": str(now_ms),
        }
        assert (await post(url, raw, headers))[0] == 200
        await rec.wait_for(1)
        headers["X-ZEvent-Timestamp"] = str(now_ms + 1)
        assert (await post(url, raw, headers))[0] == 403


async def test_duplicates_echoes_and_unknown_events(zalo_settings: ZaloSettings) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_text", text="một", msg_id="dup-1")
        delivery = signed(body, ZALO_APP_ID, ZALO_OA_SECRET)
        statuses = [(await post(url, *delivery))[1]["status"] for _ in range(3)]
        assert statuses == ["accepted", "duplicate", "duplicate"]
        echo = event("oa_send_text", text="bot reply")
        assert (await post(url, *signed(echo, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "ignored"
        other = {"app_id": ZALO_APP_ID, "event_name": "user_reacted_message", "timestamp": now_ms()}
        assert (await post(url, *signed(other, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "ignored"
        await rec.wait_for(1)
    assert [m.text for m in rec.messages] == ["một"]


async def test_acknowledges_before_the_bot_finishes(zalo_settings: ZaloSettings) -> None:
    rec = Recorder(delay=2.5)  # a slow turn (NLU + actions) must not delay the 200
    async with serve(ZaloInput(zalo_settings), rec) as url:
        started = time.monotonic()
        status, _ = await post(
            url, *signed(event("user_send_text", text="chậm"), ZALO_APP_ID, ZALO_OA_SECRET)
        )
        assert status == 200 and time.monotonic() - started < 0.5
        await rec.wait_for(1, timeout=10)


async def test_one_customers_messages_are_processed_in_order(zalo_settings: ZaloSettings) -> None:
    rec = Recorder(delay=0.05)
    async with serve(ZaloInput(zalo_settings), rec) as url:
        for i in range(5):
            await post(url, *signed(event("user_send_text", text=f"m{i}"), ZALO_APP_ID, ZALO_OA_SECRET))
        await rec.wait_for(5)
    assert [m.text for m in rec.messages] == [f"m{i}" for i in range(5)]


async def test_stickers_images_files_locations_get_the_domain_answer(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    domain = Domain.from_dict(
        {"responses": {"utter_unsupported_content": [{"text": "Hiện tôi chỉ đọc được tin nhắn văn bản ạ."}]}}
    )
    rec = Recorder()
    ctx = {"agent": SimpleNamespace(domain=domain)}
    async with serve(ZaloInput(zalo_settings), rec, ctx) as url:
        for name in ("user_send_sticker", "user_send_image", "user_send_file", "user_send_location"):
            body = event(name, user_id="6142000000077", attachments=[{"type": "x", "payload": {}}])
            assert (await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 200
    assert fake_zalo.texts_to("6142000000077") == ["Hiện tôi chỉ đọc được tin nhắn văn bản ạ."] * 4
    assert rec.messages == []


async def test_unsupported_content_goes_to_rasa_when_the_domain_has_no_answer(
    zalo_settings: ZaloSettings,
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_sticker", attachments=[{"type": "sticker", "payload": {"id": "1"}}])
        await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        [msg] = await rec.wait_for(1)
    assert msg.text == "/out_of_scope" and msg.metadata["unsupported_content"] == "sticker"


async def test_follow_greets(zalo_settings: ZaloSettings) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = {
            "app_id": ZALO_APP_ID,
            "oa_id": "366",
            "event_name": "follow",
            "timestamp": now_ms(),
            "follower": {"id": "555"},
        }
        await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        [msg] = await rec.wait_for(1)
    assert (msg.text, msg.sender_id) == ("/greet", "zalo:555")


async def test_disabled_channel_answers_503() -> None:
    async with serve(ZaloInput(None), Recorder()) as url:
        body = event("user_send_text", text="x")
        assert (await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 503


async def test_a_failed_bot_turn_is_recorded_for_staff(
    zalo_settings: ZaloSettings, failures_file: Path, bot_failures_store: str
) -> None:
    """The platform will not redeliver an acknowledged message: a failed turn goes to the agent desk
    through the bot failures store (tests/connectors/test_bot_failures.py has the rest)."""
    from tests.connectors.test_bot_failures import FailingBot, exists, stored

    rec = FailingBot()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_text", user_id="6142000000055", text="tôi cần ký hợp đồng")
        assert (await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 200
        await rec.wait_for(1)
    [record] = stored(bot_failures_store)
    assert (record["sender_id"], record["reason"], record["detail"]) == (
        "zalo:6142000000055",
        "rasa_error",
        "ConnectionError",
    )
    assert record["text"] == "tôi cần ký hợp đồng"
    assert not exists(failures_file)


def now_ms() -> str:
    return str(int(time.time() * 1000))


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def submit_info(where: str, phone: object = "0905123456", msg_id: str | None = None) -> dict:
    """A `user_submit_info` event with the form at one of the places Zalo is known to put it."""
    info = {"name": "Nguyễn Văn An", "phone": phone, "address": "", "city": "", "district": "", "ward": ""}
    body = event("user_submit_info", user_id="6142000000031", msg_id=msg_id)
    if where == "info":
        body["info"] = info
    elif where == "message.info":
        body["message"]["info"] = info
    else:
        body["shared_info"] = info
    if msg_id is None:
        del body["message"]["msg_id"]
    return body


@pytest.mark.parametrize("where", ["info", "message.info", "shared_info"])
async def test_user_submit_info_is_relayed_as_share_contact_never_own_number(
    zalo_settings: ZaloSettings, where: str
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        delivery = signed(submit_info(where), ZALO_APP_ID, ZALO_OA_SECRET)
        assert [(await post(url, *delivery))[1]["status"] for _ in range(2)] == ["accepted", "duplicate"]
        [msg] = await rec.wait_for(1)
    assert (msg.text, msg.sender_id) == (SHARE_CONTACT_TEXT, "zalo:6142000000031")
    # The customer can edit the number in Zalo's form: it is never taken as the account's own.
    assert msg.metadata[METADATA_KEY] == {
        "phone": "0905123456",
        "source": "zalo_user_info",
        "own_number": False,
    }


async def test_user_submit_info_without_a_phone_shares_no_number(zalo_settings: ZaloSettings) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        for phone in ("", None, ["0905123456"]):
            body = submit_info("info", phone=phone, msg_id=f"m-{phone!r}")
            await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        messages = await rec.wait_for(3)
    assert [m.metadata[METADATA_KEY]["phone"] for m in messages] == [None, None, None]


async def test_stale_and_future_events_are_acknowledged_and_dropped(
    zalo_settings: ZaloSettings, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()

    def at(seconds_from_now: float, text: str) -> tuple[bytes, dict[str, str]]:
        body = {**event("user_send_text", text=text), "timestamp": str(int((now + seconds_from_now) * 1000))}
        return signed(body, ZALO_APP_ID, ZALO_OA_SECRET)

    rec = Recorder()
    channel = ZaloInput(zalo_settings)
    async with serve(channel, rec) as url:
        refused = [at(-MAX_EVENT_AGE - 60, "cũ"), at(MAX_CLOCK_SKEW + 60, "tương lai")]
        for delivery in refused:
            assert await post(url, *delivery) == (200, {"status": "stale"})
        fresh = [at(-MAX_EVENT_AGE + 60, "chín phút"), at(MAX_CLOCK_SKEW - 30, "lệch giờ")]
        for delivery in fresh:
            assert (await post(url, *delivery))[1]["status"] == "accepted"
        await rec.wait_for(2)
    assert sorted(m.text for m in rec.messages) == ["chín phút", "lệch giờ"]
    assert channel.stale_events == 2
    assert "Zalo user_send_text event refused" in caplog.text and "2 stale events" in caplog.text


async def test_a_captured_delivery_replayed_later_never_reaches_the_bot(zalo_settings: ZaloSettings) -> None:
    """After a restart the dedupe memory may be gone; the timestamp still dates the delivery."""
    delivery = signed(event("user_send_text", text="ký hợp đồng"), ZALO_APP_ID, ZALO_OA_SECRET)
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        assert (await post(url, *delivery))[1]["status"] == "accepted"
        await rec.wait_for(1)
    later = ZaloInput(zalo_settings, clock=lambda: time.time() + MAX_EVENT_AGE + 1)
    async with serve(later, rec) as url:
        assert await post(url, *delivery) == (200, {"status": "stale"})
    assert len(rec.messages) == 1


@pytest.mark.parametrize(
    "stamp", ["", "abc", "１７００００００００００", "١٧٠٠٠٠٠٠٠٠٠٠٠", "²", "-1", 1.5, None, True]
)
async def test_a_timestamp_that_is_not_ascii_digits_is_refused_with_400(
    zalo_settings: ZaloSettings, stamp: object
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = {**event("user_send_text", text="x"), "timestamp": stamp}
        status, reply = await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
    assert (status, reply) == (400, {"error": "malformed_event", "detail": "timestamp"})
    assert rec.messages == []
