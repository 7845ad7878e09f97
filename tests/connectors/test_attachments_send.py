"""Attachments an agent sends (issue 18, agent_desk/attachments.py) reach the customer: the desk's
bot event (custom.documents for a PDF, image for an image) through Zalo's upload APIs and Telegram's
sendDocument/sendPhoto."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from agent_desk.attachments import bot_event
from connectors.common.files import FileFetcher
from connectors.telegram.config import TelegramSettings
from connectors.zalo.api import ZaloApi
from connectors.zalo.channel import ZaloOutput
from connectors.zalo.config import ZaloSettings
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi, FileHost
from tests.connectors.test_telegram import CHAT, channel

USER = "6142000000077"
SHA = "a" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 700
PDF = b"%PDF-1.7\n" + b"0" * 900 + b"\n%%EOF\n"
AGENT = SimpleNamespace(username="lan", display_name="Lan")


def message(kind: str, name: str, url: str) -> dict[str, Any]:
    """What Rasa hands the output channel for the desk's event (BotUttered.message())."""
    event = bot_event(kind, name, url, SHA, 700, AGENT)
    return {"text": event["text"], **event["data"]}


@pytest.fixture
def file_host() -> Iterator[FileHost]:
    with FileHost() as host:
        yield host


async def test_zalo_uploads_an_image_and_sends_it_by_attachment_id(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, file_host: FileHost
) -> None:
    file_host.files = {f"/files/{SHA}": PNG, "/files/doc": PDF}
    api = ZaloApi(zalo_settings, retry_delays=(0.05,), rate_retry_delays=(0.05,))
    fetcher = FileFetcher(zalo_settings.file_max_bytes)
    out = ZaloOutput(api, fetcher)
    await out.send_response(
        f"zalo:{USER}", message("image", "anh.png", f"{file_host.url}/files/{SHA}?exp=1&sig=x")
    )
    await out.send_response(f"zalo:{USER}", message("pdf", "Hóa đơn.pdf", f"{file_host.url}/files/doc?sig=y"))
    # Not fetchable: Zalo is given the image's URL (the media template with `url`).
    await out.send_response(f"zalo:{USER}", message("image", "x.png", f"{file_host.url}/missing.png"))
    await api.close()
    await fetcher.close()
    [image] = fake_zalo.images_to(USER)
    assert image.data == PNG and image.content_type == "image/png"
    [pdf] = fake_zalo.files_to(USER)
    assert pdf.data == PDF and pdf.filename == "Hoa-don.pdf"
    calls = fake_zalo.calls_to(USER)
    first = calls[0].message["attachment"]["payload"]
    assert first["template_type"] == "media" and first["elements"][0]["attachment_id"] == image.token
    last = calls[-1].message["attachment"]["payload"]["elements"][0]
    assert last == {"media_type": "image", "url": f"{file_host.url}/missing.png"}
    assert fake_zalo.rejected == []


async def test_telegram_uploads_the_desks_pdf_as_a_document_and_image_as_a_photo(
    telegram_settings: TelegramSettings, fake_telegram: FakeTelegramApi, file_host: FileHost
) -> None:
    file_host.files = {f"/files/{SHA}": PDF, f"/files/{'b' * 64}": PNG}
    out = channel(telegram_settings).get_output_channel()
    assert out is not None
    await out.send_response(
        f"telegram:{CHAT}", message("pdf", "Hóa đơn.pdf", f"{file_host.url}/files/{SHA}?exp=1&sig=y")
    )
    await out.send_response(
        f"telegram:{CHAT}", message("image", "anh.png", f"{file_host.url}/files/{'b' * 64}?sig=z")
    )
    # Not fetchable (and not a desk link): Telegram is given the URL, as before.
    await out.send_response(f"telegram:{CHAT}", message("image", "x.png", "https://cdn.example.vn/x.png"))
    [document] = fake_telegram.sent("sendDocument", CHAT)
    assert document.params["document"] == "<file>" and document.params["caption"] == "Hóa đơn.pdf"
    uploaded, by_url = fake_telegram.sent("sendPhoto", CHAT)
    assert uploaded.params["photo"] == "<file>" and by_url.params["photo"] == "https://cdn.example.vn/x.png"
    assert fake_telegram.sent("sendMessage", CHAT) == []  # no empty text message
