"""The signing certificate (issue 17): one sealed PDF per signed session whose hashes match the
signed files, with the consent, the OTP's channel and masked destination, and the audit events."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path
from typing import Any

from aiohttp import FormData
from sqlalchemy import select

from signing_service.drafts import sha256
from signing_service.masking import mask_name
from signing_service.models import Document
from tests.service.conftest import Api, last_code, make_request, outbox_messages
from tests.service.test_signing import doc_rows, start, validate_with_dev_ca, verify
from tests.service.test_verification import chat


async def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    proc = await asyncio.create_subprocess_exec(
        "pdftotext", "-layout", str(path), "-", stdout=subprocess.PIPE
    )
    return " ".join((await proc.communicate())[0].decode().split())


async def fetch(api: Api, path: str, headers: dict[str, str]) -> bytes:
    async with api.client.get(path, headers=headers) as r:
        assert r.status == 200 and r.content_type == "application/pdf", await r.text()
        return await r.read()


async def check(api: Api, pdf: bytes) -> tuple[str, str]:
    """The check page's verdict for an uploaded file, and the page."""
    form = FormData()
    form.add_field("file", pdf, filename="tep.pdf", content_type="application/pdf")
    async with api.client.post("/verify", data=form) as r:
        page = await r.text()
    found = re.search(r'data-verdict="(\w+)"', page)
    assert found, page
    return found.group(1), page


async def test_the_certificate_of_a_signed_session(api: Api, tmp_path: Path) -> None:
    fresh = await make_request(api, name="Trương Văn Lộc")
    _, sess = await start(api, fresh)
    sid = sess["session_id"]
    status, body = await api.get(f"/v1/signing-sessions/{sid}/certificate")
    assert (status, body["error"]) == (409, "session_not_signed")
    status, done = await verify(api, sid, last_code(api.ctx.settings, fresh.phone))
    assert status == 200
    async with api.client.get(f"/v1/signing-sessions/{sid}/certificate", headers=api.headers) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        pdf = await r.read()
    _, st = await validate_with_dev_ca(pdf, api.ctx.settings.seal_ca_path)
    assert st.intact and st.valid and st.trusted  # sealed like the documents
    text = await pdf_text(pdf, tmp_path)
    assert "BIÊN BẢN XÁC NHẬN KÝ SỐ" in text and fresh.code in text and sid in text
    rows: list[Document] = await doc_rows(api, fresh.doc_ids)
    for row in rows:
        async with api.ctx.db.read() as s:
            signed = (await s.execute(select(Document.signed_pdf).where(Document.id == row.id))).scalar_one()
        assert row.signed_sha256 == sha256(signed) and row.signed_sha256 in text  # hashes match the files
        assert row.sha256 in text  # the consented draft
    assert "Trương Văn Lộc" not in text and mask_name("Trương Văn Lộc") in text  # masked
    assert fresh.phone not in text and fresh.phone[-3:] in text  # the OTP destination, masked
    assert "Tôi đã đọc, hiểu và đồng ý với dự thảo" in text and "Telegram" in text
    assert re.search(r"sự kiện nhật ký của phiên ký: \d+(, \d+)+", text)
    assert "/verify" in text


async def test_a_chat_user_must_be_verified_and_unknown_sessions_are_404(api: Api) -> None:
    status, body = await api.get("/v1/signing-sessions/nope/certificate")
    assert (status, body["error"]) == (404, "session_not_found")
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    await verify(api, sess["session_id"], last_code(api.ctx.settings, fresh.phone))
    status, body = await api.get(
        f"/v1/signing-sessions/{sess['session_id']}/certificate", headers=chat("x-1")
    )
    assert (status, body["error"]) == (403, "not_verified")


async def signed_session(api: Api, name: str = "Lê Thị Mỹ Duyên", email: bool = True) -> tuple[Any, Any]:
    fresh = await make_request(api, name=name, email=email)
    _, sess = await start(api, fresh)
    status, done = await verify(api, sess["session_id"], last_code(api.ctx.settings, fresh.phone))
    assert status == 200 and done["status"] == "signed", done
    return fresh, done


def qr_texts(pdf: bytes, tmp_path: Path) -> list[str]:
    """The QR codes of the PDF's pages as a phone would read them (poppler renders, zbar decodes)."""
    (tmp_path / "qr.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", str(tmp_path / "qr.pdf"), str(tmp_path / "qr")], check=True
    )
    found: list[str] = []
    for page in sorted(tmp_path.glob("qr*.png")):
        out = subprocess.run(["zbarimg", "--quiet", "--raw", str(page)], capture_output=True, text=True)
        found += [line for line in out.stdout.splitlines() if line]
    return found


async def test_the_certificate_is_made_once_and_its_qr_code_opens_the_sessions_check_page(
    api: Api, tmp_path: Path
) -> None:
    fresh, done = await signed_session(api)
    sid = done["session_id"]
    first = await fetch(api, f"/v1/signing-sessions/{sid}/certificate", api.headers)
    again = await fetch(api, f"/v1/signing-sessions/{sid}/certificate", api.headers)
    assert first == again  # the copy a customer keeps is the one the check page knows
    [qr] = qr_texts(first, tmp_path)
    base = api.ctx.settings.public_base_url
    assert qr == f"{base}/verify?phien={sid}"
    async with api.client.get(qr.removeprefix(base)) as r:
        assert r.status == 200
        page = await r.text()
    rows = await doc_rows(api, fresh.doc_ids)
    assert all(row.signed_sha256 in page for row in rows) and sha256(first) in page
    assert fresh.code not in page and fresh.code[-3:] in page  # masked request code
    assert "Lê Thị Mỹ Duyên" not in page and fresh.phone not in page
    async with api.client.get("/verify?phien=" + "x" * 20) as r:
        assert r.status == 404 and "Không tìm thấy phiên ký" in await r.text()
    async with api.client.get("/verify?phien=<script>") as r:
        assert r.status == 404 and "<script>" not in await r.text()


async def test_the_check_page_recognises_the_certificate_and_refuses_a_changed_one(api: Api) -> None:
    _, done = await signed_session(api)
    pdf = await fetch(api, f"/v1/signing-sessions/{done['session_id']}/certificate", api.headers)
    verdict, page = await check(api, pdf)
    assert verdict == "valid" and "Biên bản xác nhận ký số" in page
    changed = bytearray(pdf)
    at = pdf.index(b"/Contents", len(pdf) // 3) - 40  # a byte inside the signed range
    changed[at] = changed[at] ^ 0x01
    verdict, _ = await check(api, bytes(changed))
    assert verdict in {"modified", "unknown_copy"} and verdict != "valid"


async def test_the_chat_gets_an_expiring_certificate_link_without_the_token(api: Api) -> None:
    _, done = await signed_session(api)
    link = done["certificate_url"]
    path = link.removeprefix(api.ctx.settings.public_base_url)
    assert path.startswith(f"/v1/signing-sessions/{done['session_id']}/certificate/file?")
    by_link = await fetch(api, path, {})
    assert by_link == await fetch(api, f"/v1/signing-sessions/{done['session_id']}/certificate", api.headers)
    tampered = path[:-1] + ("0" if path[-1] != "0" else "1")
    async with api.client.get(tampered) as r:
        assert r.status == 403 and "Liên kết không hợp lệ" in await r.text()
    api.ctx.clock.advance(seconds=api.ctx.settings.link_ttl_seconds + 5)
    async with api.client.get(path) as r:
        assert r.status == 403 and "hết hạn" in await r.text()


def read_file(path: str) -> bytes:
    return Path(path).read_bytes()


async def test_the_registered_email_gets_the_signed_files_and_the_certificate(api: Api) -> None:
    fresh, done = await signed_session(api, name="Hồ Văn Thắng")
    assert done["emailed_to"] and fresh.email not in done["emailed_to"]  # masked in the chat
    [mail] = [m for m in outbox_messages(api.ctx.settings, fresh.email) if m["attachments"]]
    assert fresh.code in mail["subject"] and "/verify" in mail["text"] and "1900 1909" in mail["text"]
    files = {a["sha256"]: read_file(a["path"]) for a in mail["attachments"]}
    assert all(sha256(data) == digest for digest, data in files.items())  # what was written is what is listed
    rows = await doc_rows(api, fresh.doc_ids)
    certificate = await fetch(api, f"/v1/signing-sessions/{done['session_id']}/certificate", api.headers)
    assert set(files) == {row.signed_sha256 for row in rows} | {sha256(certificate)}
    assert all(
        a["filename"].endswith(".pdf") and a["content_type"] == "application/pdf" for a in mail["attachments"]
    )
    # The SMS contact gets the short notice, with no file.
    [sms] = [m for m in outbox_messages(api.ctx.settings, fresh.phone) if "đã được ký" in m["text"]]
    assert sms["attachments"] == []


async def test_without_an_email_nothing_is_emailed_and_the_chat_is_not_told_so(api: Api) -> None:
    _, done = await signed_session(api, email=False)
    assert done["emailed_to"] is None and done["certificate_url"]
