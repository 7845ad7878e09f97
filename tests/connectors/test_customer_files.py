"""Images and files customers send (issue 18): while an agent has the conversation (the bot paused)
they reach Rasa with a `customer_file` reference the desk shows; otherwise the bot answers as before
that it reads only text."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from rasa.shared.core.domain import Domain

from agent_desk.transcript import message_from_event
from connectors.telegram.config import TelegramSettings
from connectors.zalo.channel import ZaloInput
from connectors.zalo.config import ZaloSettings
from tests.connectors.conftest import ZALO_APP_ID, ZALO_OA_SECRET
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi
from tests.connectors.harness import Recorder, serve
from tests.connectors.test_telegram import CHAT, channel
from tests.connectors.test_telegram import post as tg_post
from tests.connectors.test_zalo_webhook import post
from tests.connectors.tg_helpers import _chat, _user, next_update_id
from tests.connectors.zalo_helpers import event, signed

USER = "6142000000088"
IMAGE_URL = "https://photo-stal-1.zdn.vn/abc/anh.jpg"
UNSUPPORTED = "Dạ, hiện em chỉ đọc được tin nhắn văn bản."


class Trackers:
    """A tracker store whose trackers are paused for the given senders."""

    def __init__(self, paused: set[str]) -> None:
        self.paused = paused

    async def retrieve(self, sender_id: str) -> Any:
        return SimpleNamespace(is_paused=lambda: sender_id in self.paused)


def ctx(paused: set[str]) -> dict[str, Any]:
    domain = Domain.from_dict({"responses": {"utter_unsupported_content": [{"text": UNSUPPORTED}]}})
    return {"agent": SimpleNamespace(domain=domain, tracker_store=Trackers(paused))}


async def test_zalo_image_and_file_reach_the_agent_while_the_bot_is_paused(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec, ctx({f"zalo:{USER}"})) as url:
        image = event(
            "user_send_image",
            user_id=USER,
            text="ảnh công tơ",
            attachments=[{"type": "image", "payload": {"url": IMAGE_URL, "thumbnail": IMAGE_URL}}],
        )
        doc = event(
            "user_send_file",
            user_id=USER,
            attachments=[{"type": "file", "payload": {"url": "https://f.zdn.vn/hd.pdf", "name": "hd.pdf"}}],
        )
        for body in (image, doc):
            assert (await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[0] == 200
        msgs = await rec.wait_for(2)
    by_kind = {m.metadata["customer_file"]["kind"]: m for m in msgs}
    assert by_kind["image"].metadata["customer_file"] == {
        "kind": "image",
        "url": IMAGE_URL,
        "caption": "ảnh công tơ",
    }
    assert by_kind["file"].metadata["customer_file"]["name"] == "hd.pdf"
    assert fake_zalo.texts_to(USER) == []  # the paused bot says nothing
    # The desk's transcript of such a user event.
    shown = message_from_event(
        {
            "event": "user",
            "text": "/out_of_scope",
            "timestamp": time.time(),
            "metadata": by_kind["image"].metadata,
        }
    )
    assert shown is not None and shown["text"] == "ảnh công tơ"
    assert shown["customer_file"]["url"] == IMAGE_URL and shown["customer_file"]["kind"] == "image"


async def test_zalo_image_is_answered_as_before_when_the_bot_is_not_paused(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    rec = Recorder()
    async with serve(ZaloInput(zalo_settings), rec, ctx(set())) as url:
        body = event(
            "user_send_image", user_id=USER, attachments=[{"type": "image", "payload": {"url": IMAGE_URL}}]
        )
        await post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
    assert fake_zalo.texts_to(USER) == [UNSUPPORTED] and rec.messages == []


async def test_telegram_photo_and_document_keep_their_file_id_while_paused(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi
) -> None:
    def update(**content: Any) -> dict[str, Any]:
        message = {"message_id": 3, "date": int(time.time()), "chat": _chat(CHAT), "from": _user(CHAT)}
        return {"update_id": next_update_id(), "message": {**message, **content}}

    photo = update(
        photo=[
            {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 900},
            {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 960, "file_size": 90000},
        ],
        caption="hóa đơn tháng 5",
    )
    doc = update(document={"file_id": "DOC1", "file_unique_id": "d", "file_name": "giay-to.pdf"})
    rec = Recorder()
    async with serve(channel(telegram_settings), rec, ctx({f"telegram:{CHAT}"})) as url:
        await tg_post(url, photo)
        await tg_post(url, doc)
        msgs = await rec.wait_for(2)
    files = sorted((m.metadata["customer_file"] for m in msgs), key=lambda f: f["kind"])
    assert files == [
        {"kind": "file", "file_id": "DOC1", "name": "giay-to.pdf"},
        {"kind": "image", "file_id": "big", "caption": "hóa đơn tháng 5"},
    ]
    assert fake_telegram.texts_to(CHAT) == []
