"""Zalo and Telegram end to end: a real Rasa server (trained model), action server and signing
service; only the platforms are fakes. Each channel gets its own signing database (on the session's shared
channel stack, tests/connectors/conftest.py), because the journey signs the demo customer's documents."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.connectors.e2e_support import (
    ChannelStack,
    Customer,
    TelegramCustomer,
    ZaloCustomer,
    http,
    latest_otp,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
CODE = "PC05TK0000123"


@pytest.fixture(scope="module", params=["zalo", "telegram"])
def channel_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    shared_channel_stack: ChannelStack,
) -> Iterator[ChannelStack]:
    # The session's Rasa, with a signing database of this channel's own (the journey signs).
    cs = shared_channel_stack.fresh_signing(tmp_path_factory.mktemp(f"channels-{request.param}"))
    cs.channel = request.param  # type: ignore[attr-defined]
    try:
        yield cs
    finally:
        cs.stop_extra()


@pytest.fixture
def customer(channel_stack: ChannelStack) -> Customer:
    kind = channel_stack.channel  # type: ignore[attr-defined]
    return ZaloCustomer(channel_stack) if kind == "zalo" else TelegramCustomer(channel_stack)


def pdf_text(pdf: bytes) -> str:
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode()


def tracker(cs: ChannelStack, sender_id: str) -> dict:
    status, body = http("GET", f"{cs.rasa}/conversations/{sender_id}/tracker?token={cs.stack.rasa_token}")
    assert status == 200, body
    return json.loads(body)


def test_a_message_gets_the_bots_answer_in_the_customers_conversation(customer: Customer) -> None:
    customer.say("xin chào")
    replies = customer.replies()
    assert replies and all(r.text or r.buttons or r.document for r in replies), customer.transcript
    t = tracker(customer.cs, customer.sender_id)
    assert t["latest_input_channel"] == customer.channel
    [user_event] = [e for e in t["events"] if e["event"] == "user"]
    assert user_event["text"] == "xin chào" and user_event["parse_data"]["intent"]["name"] == "greet"
    bot_texts = [e["text"] for e in t["events"] if e["event"] == "bot"]
    assert bot_texts and replies[0].text == bot_texts[0].strip()


def test_agent_desk_pushes_with_output_channel_latest(customer: Customer) -> None:
    customer.say("xin chào")
    customer.replies()
    cs = customer.cs
    status, body = http(
        "POST",
        f"{cs.rasa}/conversations/{customer.sender_id}/tracker/events"
        f"?output_channel=latest&execute_side_effects=true&token={cs.stack.rasa_token}",
        json.dumps(
            [
                {
                    "event": "bot",
                    "text": "Em là tổng đài viên Lan, em hỗ trợ anh/chị ạ.",
                    "metadata": {"agent": "lan"},
                }
            ]
        ).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    [pushed] = customer.replies()
    assert pushed.text == "Em là tổng đài viên Lan, em hỗ trợ anh/chị ạ."


@pytest.mark.parametrize("channel_stack", ["zalo"], indirect=True)
def test_zalo_token_refresh_and_window_failure_inside_rasa(customer: Customer) -> None:
    assert isinstance(customer, ZaloCustomer)
    cs = customer.cs
    cs.zalo.expire_access_tokens()
    customer.say("xin chào")
    assert customer.replies(), customer.transcript
    stored = json.loads(cs.token_store.read_text())
    assert stored["access_token"] in cs.zalo.valid_access and stored["refresh_token"] in cs.zalo.valid_refresh
    before = len(cs.failure_records())
    cs.zalo.fail_next(-230)  # the customer's 7-day window has closed
    customer.say("cảm ơn")
    deadline = time.monotonic() + 60
    while len(cs.failure_records()) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    record = cs.failure_records()[-1]
    assert (record["sender_id"], record["reason"], record["error_code"]) == (
        customer.sender_id,
        "outside_window",
        -230,
    )
    assert record["message"]["text"]


def _find(replies: list, pred) -> dict | None:  # type: ignore[no-untyped-def]
    for r in replies:
        for b in r.buttons:
            if pred(b):
                return b
    return None


def verify_in_one_tap(customer: Customer) -> list:
    """The bot asked to verify: the platform's one-tap share (Telegram: verified at once; Zalo: the
    number matches, so the code goes there and is typed back). Returns the replies that follow."""
    replies = customer.replies()
    text = " ".join(r.text for r in replies)
    assert "xác minh" in text and not any(
        "/documents/" in b.get("url", "") for r in replies for b in r.buttons
    )
    if isinstance(customer, TelegramCustomer):
        assert customer.asked_for_contact(), customer.transcript
        customer.share_phone("+84905123456")
        return customer.replies()
    assert isinstance(customer, ZaloCustomer) and customer.asked_for_info(), customer.transcript
    sent_at = time.time()
    customer.share_phone("0905123456")
    assert "mã xác minh" in " ".join(r.text for r in customer.replies()), customer.transcript
    customer.say(latest_otp(customer.cs.stack.outbox, sent_at))
    return customer.replies()


def test_signing_journey_of_the_demo_customer(customer: Customer) -> None:
    """Find PC05TK0000123 → documents (verify in one tap) → sign → consent → (SMS → OTP) → signed."""
    cs = customer.cs
    if isinstance(customer, TelegramCustomer):
        customer.say(f"/start {CODE}")  # the deep link t.me/<bot>?start=PC05TK0000123
    else:
        customer.say(f"tra cứu hồ sơ {CODE}")
    found = customer.replies()
    assert any("Ký hợp đồng" in r.text for r in found), customer.transcript

    customer.say("xem giấy tờ")
    docs = verify_in_one_tap(customer)
    assert any("Xác minh thành công" in r.text for r in docs), customer.transcript
    doc_links = [b["url"] for r in docs for b in r.buttons if "url" in b and "/documents/" in b["url"]]
    assert len(doc_links) >= 2, customer.transcript
    status, pdf = http("GET", doc_links[0])
    assert status == 200 and pdf.startswith(b"%PDF")

    customer.say("ký hợp đồng")
    otp_sent_at = None
    signed: list = []
    replies: list = []
    for _ in range(10):
        new = customer.replies()
        if not new:
            pytest.fail("the bot stopped answering:\n" + "\n".join(customer.transcript))
        replies += new
        text = " ".join(r.text for r in replies)
        if "Ký số thành công" in text:
            signed = replies
            break
        consent = _find(replies, lambda b: b.get("payload") == "/affirm")
        sms = _find(replies, lambda b: b.get("payload") == "sms" or b.get("title", "").startswith("SMS"))
        choices = [b for r in replies for b in r.buttons if b.get("payload", "").isdigit()]
        if consent:
            customer.tap(consent)
        elif sms:
            otp_sent_at = time.time()
            customer.tap(sms)
        elif "OTP" in text and otp_sent_at is not None:
            customer.say(latest_otp(cs.stack.outbox, otp_sent_at))
        elif choices:
            customer.say("tất cả")  # both documents in one OTP (batch)
        else:
            continue  # the turn is still arriving (a slow action): read on before deciding
        replies = []
    else:
        pytest.fail("journey did not finish:\n" + "\n".join(customer.transcript))

    signed_links = [
        b["url"] for r in signed for b in r.buttons if "url" in b and "variant=signed" in b["url"]
    ]
    assert len(signed_links) == 2, customer.transcript
    for link in signed_links:
        status, pdf = http("GET", link)
        assert status == 200 and pdf.startswith(b"%PDF") and b"/ByteRange" in pdf  # a signed PDF
    [certificate_link] = [
        b["url"] for r in signed for b in r.buttons if "/certificate/file" in b.get("url", "")
    ]
    status, certificate = http("GET", certificate_link)
    assert status == 200 and certificate.startswith(b"%PDF")
    signed_files = [http("GET", link)[1] for link in signed_links]
    certificate_text = pdf_text(certificate)
    for data in signed_files:  # the certificate names each signed file by its SHA-256
        assert hashlib.sha256(data).hexdigest() in certificate_text
    files = [r.document for r in signed if r.document]
    if isinstance(customer, TelegramCustomer):
        # On Telegram the signed PDFs and the certificate arrive as files (sendDocument by URL).
        assert sorted(files) == sorted([*signed_links, certificate_link])
    else:
        # On Zalo they are uploaded (upload API) and sent as file messages, after the text.
        uploaded = cs.zalo.files_to(customer.user_id)[-3:]  # the drafts came as files before
        assert [u.data for u in uploaded] == [*signed_files, certificate]
        assert all(u.filename.endswith(".pdf") and u.filename.isascii() for u in uploaded)
        assert len(files) == 3
    # The signing service recorded the customer's chat channel.
    status, body = http(
        "GET",
        f"{cs.stack.signing_url}/v1/requests/{CODE}/audit",
        headers={"Authorization": f"Bearer {cs.stack.token}"},
    )
    assert status == 200
    assert customer.channel in {e.get("channel") for e in json.loads(body)["events"]}
    assert [r for r in cs.failure_records() if r["sender_id"] == customer.sender_id] == []
