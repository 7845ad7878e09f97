"""Attachments (issue 18): the owner of a conversation sends the customer a PDF or an image; the type
is read from the magic bytes, the size bounded, the file served to the channel only at a signed,
expiring link, and the tracker gets a bot event its channel sends (custom.documents / image)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from agent_desk import attachments
from agent_desk.transcript import message_from_event
from tests.desk.conftest import add_account, login
from tests.desk.test_channel_window import claim, queued, world  # noqa: F401 (fixture)

PDF = b"%PDF-1.4\n" + b"0" * 2000 + b"\n%%EOF"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 500
SENDER = "telegram:700100200"


async def send(client, handoff_id: int, token: str, data: bytes, name: str = "hoa-don.pdf"):
    resp = await client.post(
        f"/conversations/{handoff_id}/attachments",
        data=data,
        headers={
            "X-CSRF-Token": token,
            "X-Requested-With": "fetch",
            "X-File-Name": name,
            "Content-Type": "application/octet-stream",
        },
    )
    return resp.status, await resp.json()


@pytest.fixture
async def owned(world):  # noqa: F811
    client, rasa, _signing, token = world
    handoff_id = await queued(client, rasa, SENDER, time.time() - 60, code=None)
    await claim(client, handoff_id, token)
    return client, rasa, token, handoff_id


async def test_pdf_goes_to_the_tracker_with_a_signed_link_the_channel_can_fetch(owned):
    client, rasa, token, handoff_id = owned
    status, body = await send(client, handoff_id, token, PDF, "H%C3%B3a%20%C4%91%C6%A1n.exe")
    assert status == 200, body
    assert body["kind"] == "pdf" and body["name"] == "Hóa đơn.pdf"
    event, query = rasa.bot_lines(SENDER)[-1]
    assert query["output_channel"] == "latest" and query["execute_side_effects"] == "true"
    [doc] = event["data"]["custom"]["documents"]
    assert doc["title"] == "Hóa đơn.pdf"
    assert event["metadata"]["desk_file"]["sha256"] == body["sha256"]
    url = urlsplit(doc["url"])
    assert url.netloc == "127.0.0.1:8900"
    # The channel's fetch: the bytes with the signature, nothing without or with a wrong one.
    fetched = await client.get(f"{url.path}?{url.query}")
    assert fetched.status == 200 and await fetched.read() == PDF
    assert fetched.headers["Content-Type"] == "application/pdf"
    assert (await client.get(url.path)).status == 403
    assert (await client.get(f"{url.path}?{url.query.replace('sig=', 'sig=0')}")).status == 403
    # The transcript shows the file through the desk (logged in), never the signed link.
    shown = message_from_event(event)
    assert shown is not None and shown["file"]["name"] == "Hóa đơn.pdf"
    assert (await client.get(f"/desk-files/{body['sha256']}")).status == 200


async def test_images_go_as_image_and_the_link_expires(owned):
    client, rasa, token, handoff_id = owned
    for data, mime in ((PNG, "image/png"), (JPEG, "image/jpeg")):
        status, body = await send(client, handoff_id, token, data, "anh")
        assert status == 200 and body["kind"] == "image"
        event, _ = rasa.bot_lines(SENDER)[-1]
        assert "custom" not in event["data"]
        url = urlsplit(event["data"]["image"])
        resp = await client.get(f"{url.path}?{url.query}")
        assert resp.headers["Content-Type"] == mime
    settings = client.app[attachments.SETTINGS]
    old = urlsplit(
        attachments.signed_url(settings, body["sha256"], now=time.time() - 2 * attachments.FILE_URL_TTL)
    )
    assert (await client.get(f"{old.path}?{old.query}")).status == 410


async def test_wrong_type_and_oversize_are_refused_with_a_clear_message(owned):
    client, rasa, token, handoff_id = owned
    before = len(rasa.bot_lines(SENDER))
    status, body = await send(client, handoff_id, token, b"MZ\x90\x00 not a pdf", "hoa-don.pdf")
    assert status == 415 and "PDF" in body["message"] and "nội dung" in body["message"]
    status, body = await send(client, handoff_id, token, PNG + b"\x00" * (1024 * 1024), "anh.png")
    assert status == 413 and "Ảnh quá lớn" in body["message"] and "1 MB" in body["message"]
    status, body = await send(client, handoff_id, token, PDF + b"0" * (5 * 1024 * 1024), "to.pdf")
    assert status == 413 and "5 MB" in body["message"]
    assert len(rasa.bot_lines(SENDER)) == before


async def test_only_the_owner_with_csrf_may_send(owned):
    client, rasa, token, handoff_id = owned
    before = len(rasa.bot_lines(SENDER))
    resp = await client.post(f"/conversations/{handoff_id}/attachments", data=PDF)
    assert resp.status == 403  # no CSRF token
    await add_account(client, "minh", name="Minh")
    other = await login(client, "minh")
    status, body = await send(client, handoff_id, other, PDF)
    assert status == 403 and "Lan" in body["message"]
    assert len(rasa.bot_lines(SENDER)) == before
    client.session.cookie_jar.clear()
    assert (await client.get(f"/desk-files/{'0' * 64}", allow_redirects=False)).status in {302, 303}


async def test_the_conversation_page_shows_the_form_and_the_sent_file(owned):
    client, rasa, token, handoff_id = owned
    page = await (await client.get(f"/conversations/{handoff_id}")).text()
    assert 'id="attach-form"' in page and "attachments.js" in page


async def test_the_transcript_shows_sent_files_and_the_customers_files(owned, monkeypatch):
    client, rasa, token, handoff_id = owned
    status, body = await send(client, handoff_id, token, PNG, "anh.png")
    sent, _ = rasa.bot_lines(SENDER)[-1]
    customer = {
        "event": "user",
        "text": "/out_of_scope",
        "timestamp": time.time(),
        "metadata": {"customer_file": {"kind": "file", "name": "giay-to.pdf", "file_id": "DOC1"}},
    }
    zalo = {
        "event": "user",
        "text": "/out_of_scope",
        "timestamp": time.time(),
        "metadata": {"customer_file": {"kind": "image", "url": "https://photo.zdn.vn/a.jpg"}},
    }
    desk = client.app[attachments.DESK]

    async def tracker(sender_id):
        return {
            "sender_id": sender_id,
            "events": [customer, zalo, {**sent, "timestamp": time.time()}],
            "slots": {},
        }

    monkeypatch.setattr(desk.rasa, "tracker", tracker)
    page = await (await client.get(f"/conversations/{handoff_id}")).text()
    assert f'src="/desk-files/{body["sha256"]}"' in page
    assert "Khách gửi tệp: giay-to.pdf" in page and "Khách gửi ảnh" in page
    assert 'href="https://photo.zdn.vn/a.jpg"' in page
    assert "sig=" not in page and "/out_of_scope" not in page
