"""The signing certificate (issue 17): one sealed PDF per signed session whose hashes match the
signed files, with the consent, the OTP's channel and masked destination, and the audit events."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from sqlalchemy import select

from signing_service.drafts import sha256
from signing_service.masking import mask_name
from signing_service.models import Document
from tests.service.conftest import Api, last_code, make_request
from tests.service.test_signing import doc_rows, start, validate_with_dev_ca, verify
from tests.service.test_verification import chat


async def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "cert.pdf"
    path.write_bytes(pdf)
    proc = await asyncio.create_subprocess_exec(
        "pdftotext", "-layout", str(path), "-", stdout=subprocess.PIPE
    )
    return " ".join((await proc.communicate())[0].decode().split())


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
