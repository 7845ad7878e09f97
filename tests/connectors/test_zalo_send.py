"""Zalo sending against the fake OA API: message shapes, token refresh, failures surfaced."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from common.shared_contact import REQUEST_CONTACT_BUTTON
from connectors.common.canned import REQUEST_INFO_SUBTITLE
from connectors.common.files import FileFetcher
from connectors.common.settings import ConfigError
from connectors.zalo.api import ZaloApi
from connectors.zalo.channel import ZaloOutput
from connectors.zalo.config import ZaloSettings
from tests.connectors.fakes import FakeZaloApi, FileHost

USER = "6142000000009"
SENDER = f"zalo:{USER}"


def output(settings: ZaloSettings) -> tuple[ZaloOutput, ZaloApi]:
    api = ZaloApi(settings, retry_delays=(0.05, 0.1), rate_retry_delays=(0.05,))
    return ZaloOutput(api), api


def exists(path: str) -> bool:
    return Path(path).exists()


def failures(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_text_is_split_at_2000_and_buttons_ride_on_the_last_part(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    out, api = output(zalo_settings)
    buttons = [{"title": f"Lựa chọn {i}", "payload": f'/inform{{"n":{i}}}'} for i in range(7)]
    buttons.append({"title": "Cổng CSKH", "url": "https://cskh.cpc.vn"})
    await out.send_response(SENDER, {"text": ("Câu dài. " * 300).strip(), "buttons": buttons, "timestamp": 1})
    await api.close()
    calls = fake_zalo.calls_to(USER)
    assert [len(c.message["text"]) <= 2000 for c in calls] == [True] * len(calls)
    texts = [c.message["text"] for c in calls]
    assert "".join(texts[:2]).replace(" ", "") == ("Câu dài. " * 300).replace(" ", "")
    first, second = (
        calls[1].message["attachment"]["payload"]["buttons"],
        calls[2].message["attachment"]["payload"]["buttons"],
    )
    assert len(first) == 5 and len(second) == 3  # at most five buttons per message
    assert first[0] == {"title": "Lựa chọn 0", "type": "oa.query.hide", "payload": '/inform{"n":0}'}
    assert second[-1] == {
        "title": "Cổng CSKH",
        "type": "oa.open.url",
        "payload": {"url": "https://cskh.cpc.vn"},
    }
    assert {c.access_token for c in calls} == {"AT-initial"}


async def test_documents_are_sent_as_links_with_url_buttons(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    out, api = output(zalo_settings)
    docs = [
        {"title": "Hợp đồng mua bán điện sinh hoạt", "url": "https://ky.evn.vn/v1/documents/1/file?sig=a"},
        {"title": "Biên bản thỏa thuận đấu nối", "url": "https://ky.evn.vn/v1/documents/2/file?sig=b"},
    ]
    await out.send_response(SENDER, {"text": "Tài liệu của anh/chị:", "custom": {"documents": docs}})
    await api.close()
    [intro, links] = fake_zalo.calls_to(USER)
    assert intro.message == {"text": "Tài liệu của anh/chị:"}
    assert "https://ky.evn.vn/v1/documents/1/file?sig=a" in links.message["text"]
    url_buttons = links.message["attachment"]["payload"]["buttons"]
    assert [b["payload"]["url"] for b in url_buttons] == [d["url"] for d in docs]
    assert all(b["type"] == "oa.open.url" for b in url_buttons)


def pdf_bytes(label: str, size: int = 2000) -> bytes:
    return b"%PDF-1.7\n% " + label.encode() + b"\n" + b"0" * size + b"\n%%EOF\n"


@pytest.fixture
def file_host() -> Iterator[FileHost]:
    with FileHost() as host:
        yield host


async def test_documents_go_as_files_through_the_upload_api_after_the_text(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, file_host: FileHost, failures_file: Path
) -> None:
    signed = pdf_bytes("hop dong da ky")
    certificate = pdf_bytes("bien ban")
    file_host.files = {
        "/v1/documents/7/file": signed,
        "/v1/signing-sessions/abc/certificate/file": certificate,
    }
    api = ZaloApi(zalo_settings, retry_delays=(0.05,), rate_retry_delays=(0.05,))
    fetcher = FileFetcher(zalo_settings.file_max_bytes)
    out = ZaloOutput(api, fetcher)
    buttons = [  # as the bot answers after signing: link buttons to the PDFs
        {"title": "✅ Hợp đồng mua bán điện sinh hoạt", "url": f"{file_host.url}/v1/documents/7/file?sig=x"},
        {
            "title": "📄 Biên bản xác nhận ký số",
            "url": f"{file_host.url}/v1/signing-sessions/abc/certificate/file?sig=y",
        },
    ]
    await out.send_response(SENDER, {"text": "Ký số thành công 1 giấy tờ.", "buttons": buttons})
    await api.close()
    await fetcher.close()
    calls = fake_zalo.calls_to(USER)
    assert calls[0].message["text"] == "Ký số thành công 1 giấy tờ."  # the text and its links first
    assert [b["type"] for b in calls[0].message["attachment"]["payload"]["buttons"]] == ["oa.open.url"] * 2
    files = fake_zalo.files_to(USER)
    assert [f.data for f in files] == [signed, certificate]
    assert [f.filename for f in files] == [
        "Hop-dong-mua-ban-dien-sinh-hoat.pdf",
        "Bien-ban-xac-nhan-ky-so.pdf",
    ]
    assert {f.content_type for f in files} == {"application/pdf"}
    assert len(calls) == 3 and failures(failures_file) == []


async def test_a_document_that_cannot_go_as_a_file_goes_as_its_link(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, file_host: FileHost, failures_file: Path
) -> None:
    small, big = pdf_bytes("nho"), pdf_bytes("lon", 30_000)
    file_host.files = {"/a.pdf": small, "/b.pdf": big, "/c.pdf": b"<html>not a pdf</html>"}
    limited = replace(zalo_settings, file_max_bytes=20_000)
    api = ZaloApi(limited, retry_delays=(0.05,), rate_retry_delays=(0.05,))
    fetcher = FileFetcher(limited.file_max_bytes)
    out = ZaloOutput(api, fetcher)
    fake_zalo.upload_fail_next(-201)  # Zalo refuses the first upload
    docs = [
        {"title": "Tài liệu A", "url": f"{file_host.url}/a.pdf"},
        {"title": "Tài liệu B", "url": f"{file_host.url}/b.pdf"},  # over the limit: never uploaded
        {"title": "Tài liệu C", "url": f"{file_host.url}/c.pdf"},  # not a PDF
        {"title": "Tài liệu D", "url": f"{file_host.url}/missing.pdf"},  # 404
    ]
    await out.send_response(SENDER, {"text": "Hồ sơ:", "custom": {"documents": docs}})
    await api.close()
    await fetcher.close()
    assert fake_zalo.files_to(USER) == [] and [u.data for u in fake_zalo.uploads] == []
    texts = "\n".join(fake_zalo.texts_to(USER))
    assert all(d["url"] in texts for d in docs)  # every document reached the customer as a link
    assert failures(failures_file) == []


async def test_an_upload_with_an_expired_token_is_refreshed_and_retried(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, file_host: FileHost
) -> None:
    file_host.files = {"/a.pdf": pdf_bytes("a")}
    api = ZaloApi(zalo_settings, retry_delays=(0.05,), rate_retry_delays=(0.05,))
    fetcher = FileFetcher(zalo_settings.file_max_bytes)
    out = ZaloOutput(api, fetcher)
    await out.send_response(
        SENDER, {"text": "Hồ sơ:", "custom": {"documents": [{"title": "A", "url": f"{file_host.url}/a.pdf"}]}}
    )
    fake_zalo.expire_access_tokens()
    await out.send_response(
        SENDER,
        {"text": "Lần nữa:", "custom": {"documents": [{"title": "A", "url": f"{file_host.url}/a.pdf"}]}},
    )
    await api.close()
    await fetcher.close()
    assert len(fake_zalo.files_to(USER)) == 2 and len(fake_zalo.refresh_calls) == 1


def test_zalo_file_settings_are_validated() -> None:
    base = {"ZALO_APP_ID": "1", "ZALO_OA_SECRET_KEY": "k", "ZALO_ACCESS_TOKEN": "t"}
    assert ZaloSettings.from_env(base).send_files is True  # type: ignore[union-attr]
    off = ZaloSettings.from_env({**base, "ZALO_SEND_FILES": "0", "ZALO_FILE_MAX_MB": "2"})
    assert off is not None and not off.send_files and off.file_max_bytes == 2 * 1024 * 1024
    with pytest.raises(ConfigError, match="ZALO_SEND_FILES"):
        ZaloSettings.from_env({**base, "ZALO_SEND_FILES": "maybe"})
    with pytest.raises(ConfigError, match="ZALO_FILE_MAX_MB"):
        ZaloSettings.from_env({**base, "ZALO_FILE_MAX_MB": "lots"})


async def test_expired_token_is_refreshed_persisted_and_the_send_retried_once(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path
) -> None:
    fake_zalo.expire_access_tokens()
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "Xin chào"})
    assert fake_zalo.texts_to(USER) == ["Xin chào"]
    [refresh] = fake_zalo.refresh_calls
    assert refresh == {
        "refresh_token": "RT-initial",
        "app_id": zalo_settings.app_id,
        "grant_type": "refresh_token",
    }
    stored = json.loads(zalo_settings.token_store_path.read_text())
    new_access = fake_zalo.calls_to(USER)[0].access_token
    assert stored["access_token"] == new_access != "AT-initial"
    assert stored["refresh_token"] in fake_zalo.valid_refresh and stored["expires_at"] > 0
    assert zalo_settings.token_store_path.stat().st_mode & 0o777 == 0o600
    # A restarted process starts from the stored pair, not the dead env refresh token.
    restarted = ZaloApi(zalo_settings)
    assert await restarted.tokens.access_token() == new_access
    # The next expiry rotates again with the *new* refresh token.
    fake_zalo.expire_access_tokens()
    await ZaloOutput(restarted).send_response(SENDER, {"text": "Lần hai"})
    assert fake_zalo.refresh_calls[1]["refresh_token"] == stored["refresh_token"]
    assert exists(str(zalo_settings.token_store_path) + ".prev")
    await api.close()
    await restarted.close()
    assert failures(failures_file) == []


async def test_concurrent_sends_with_an_expired_token_refresh_once(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    fake_zalo.expire_access_tokens()
    out, api = output(zalo_settings)
    await asyncio.gather(*(out.send_response(f"zalo:{i}", {"text": f"t{i}"}) for i in range(8)))
    await api.close()
    assert len(fake_zalo.refresh_calls) == 1
    assert len(fake_zalo.sent) == 8


async def test_refused_refresh_records_the_reply_for_staff(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path
) -> None:
    fake_zalo.expire_access_tokens()
    fake_zalo.valid_refresh.clear()  # the refresh token was revoked: an admin must re-authorise
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "Mã OTP đã được gửi"})
    await api.close()
    [record] = failures(failures_file)
    assert record["reason"] == "auth" and record["sender_id"] == SENDER
    assert record["message"]["text"] == "Mã OTP đã được gửi"


async def test_outside_the_window_is_not_retried_and_is_surfaced(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path
) -> None:
    fake_zalo.fail_next(-230)
    out, api = output(zalo_settings)
    await out.send_response(
        SENDER, {"text": "Đã ký xong", "buttons": [{"title": "OK", "payload": "/affirm"}]}
    )
    await api.close()
    assert fake_zalo.sent == [] and len(fake_zalo.rejected) == 1
    [record] = failures(failures_file)
    assert (record["channel"], record["reason"], record["error_code"]) == ("zalo", "outside_window", -230)
    assert record["message"]["buttons"] == [{"title": "OK", "payload": "/affirm"}]


async def test_rate_limit_is_retried_then_surfaced(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path
) -> None:
    fake_zalo.fail_next(-32)
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "một"})
    assert fake_zalo.texts_to(USER) == ["một"]
    fake_zalo.fail_next(-32, -32)
    await out.send_response(SENDER, {"text": "hai"})
    await api.close()
    assert fake_zalo.texts_to(USER) == ["một"]
    assert [r["reason"] for r in failures(failures_file)] == ["rate_limited"]


async def test_network_errors_are_retried_with_backoff(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path
) -> None:
    fake_zalo.fail_http_next(2)
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "qua mạng chập chờn"})
    assert fake_zalo.texts_to(USER) == ["qua mạng chập chờn"]
    dead = replace(zalo_settings, api_base_url="http://127.0.0.1:9")  # nothing listens there
    out2, api2 = output(dead)
    await out2.send_response(SENDER, {"text": "không tới"})
    await api.close()
    await api2.close()
    [record] = failures(failures_file)
    assert record["reason"] == "network" and record["message"]["text"] == "không tới"


async def test_pushes_use_the_raw_or_prefixed_sender_id(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    out, api = output(zalo_settings)
    await out.send_text_message(USER, "từ nhân viên")
    await out.send_response(SENDER, {"text": None, "timestamp": 5})  # nothing to send
    await api.close()
    assert fake_zalo.texts_to(USER) == ["từ nhân viên"]


async def test_no_token_or_text_in_logs_through_refresh_and_failure(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, failures_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_zalo.expire_access_tokens()
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "SĐT 0905123456"})
    fake_zalo.fail_next(-230)
    await out.send_response(SENDER, {"text": "SĐT 0905123456"})
    await api.close()
    stored = json.loads(zalo_settings.token_store_path.read_text())
    for secret in (
        "AT-initial",
        "RT-initial",
        stored["access_token"],
        stored["refresh_token"],
        "0905123456",
        USER,
    ):
        assert secret not in caplog.text
    assert "outside_window" in caplog.text


async def test_request_contact_button_is_a_request_user_info_card(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi
) -> None:
    share = {"title": "📱 Chia sẻ số điện thoại", "type": REQUEST_CONTACT_BUTTON, "payload": "/share_contact"}
    other = {"title": "Để sau", "payload": "/deny"}
    out, api = output(zalo_settings)
    await out.send_response(SENDER, {"text": "Xác minh số điện thoại", "buttons": [share, other]})
    # Without ZALO_REQUEST_INFO_IMAGE_URL the card has no picture; with it, the configured one.
    image = "https://cskh.cpc.vn/static/share-phone.png"
    out_img, api_img = output(replace(zalo_settings, request_info_image_url=image))
    await out_img.send_response(SENDER, {"buttons": [{**share, "title": "T" * 150}]})
    await api.close()
    await api_img.close()
    text, card, card_img = (c.message for c in fake_zalo.calls_to(USER))
    assert text == {
        "text": "Xác minh số điện thoại",
        "attachment": {
            "type": "template",
            "payload": {"buttons": [{"title": "Để sau", "type": "oa.query.hide", "payload": "/deny"}]},
        },
    }
    assert card == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "request_user_info",
                "elements": [{"title": "📱 Chia sẻ số điện thoại", "subtitle": REQUEST_INFO_SUBTITLE}],
            },
        }
    }
    [element] = card_img["attachment"]["payload"]["elements"]
    assert element == {"title": "T" * 100, "subtitle": REQUEST_INFO_SUBTITLE, "image_url": image}
    assert len(REQUEST_INFO_SUBTITLE) <= 500
