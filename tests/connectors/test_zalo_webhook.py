"""Zalo webhook: MAC check, fast acknowledgement, dedupe, event classes (real Sanic server)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.domain import Domain

from connectors.zalo.channel import ZaloInput
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
    assert msg.metadata == {"zalo": {"event": "user_send_text"}}


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
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = {**event("user_send_text", text="chào"), "timestamp": "1700000000999"}
        raw = json.dumps(body).encode()
        headers = {
            "X-ZEvent-Signature": compute_mac(ZALO_APP_ID, raw, "1700000000000", ZALO_OA_SECRET),
            "X-ZEvent-Timestamp": "1700000000000",
        }
        assert (await post(url, raw, headers))[0] == 200
        await rec.wait_for(1)
        headers["X-ZEvent-Timestamp"] = "1700000000001"
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
        other = {"app_id": ZALO_APP_ID, "event_name": "user_reacted_message", "timestamp": "1"}
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
            "timestamp": "17",
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
    zalo_settings: ZaloSettings, failures_file: Path
) -> None:
    class FailingBot(Recorder):
        async def __call__(self, message: UserMessage) -> None:
            self.messages.append(message)
            raise ConnectionError("lock store unreachable")

    rec = FailingBot()
    async with serve(ZaloInput(zalo_settings), rec) as url:
        body = event("user_send_text", user_id="6142000000055", text="tôi cần ký hợp đồng")
        assert (await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 200
        await rec.wait_for(1)
    [record] = read_lines(failures_file)
    assert (record["sender_id"], record["reason"], record["error_code"]) == (
        "zalo:6142000000055",
        "processing_failed",
        "ConnectionError",
    )
    assert record["message"] == {"user_text": "tôi cần ký hợp đồng"}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
