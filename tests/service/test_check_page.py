"""The public check page (issue 17, first part): a signed file of this service is valid; one byte
changed, another file, or bad uploads get a clear Vietnamese answer, never a 500."""

from __future__ import annotations

import aiohttp
from sqlalchemy import select
from sqlalchemy.orm import undefer

from signing_service.models import Document
from tests.service.conftest import Api


async def signed_pdf(api: Api) -> bytes:
    async with api.ctx.db.read() as s:
        doc = (
            await s.execute(
                select(Document)
                .options(undefer(Document.signed_pdf))
                .where(Document.signed_pdf.is_not(None))
                .limit(1)
            )
        ).scalar_one()
        return bytes(doc.signed_pdf)


async def upload(api: Api, data: bytes, name: str = "hop-dong.pdf", field: str = "file") -> tuple[int, str]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename=name, content_type="application/pdf")
    async with api.client.post("/verify", data=form) as r:  # no token: the page is public
        return r.status, await r.text()


async def test_the_form_is_public(api: Api) -> None:
    async with api.client.get("/verify") as r:
        assert r.status == 200 and 'name="file"' in await r.text()


async def test_a_signed_file_of_this_service_is_valid_and_shows_no_personal_data(api: Api) -> None:
    pdf = await signed_pdf(api)
    status, page = await upload(api, pdf)
    assert status == 200
    assert 'data-verdict="valid"' in page and "Hồ sơ hợp lệ" in page
    assert "****" in page  # the request code, masked
    assert "Nguyễn" not in page and "Phạm" not in page  # no names


async def test_one_byte_changed_is_reported_modified(api: Api) -> None:
    pdf = bytearray(await signed_pdf(api))
    at = pdf.index(b"stream") + 40  # inside the first content stream, covered by the signature
    pdf[at] = (pdf[at] + 1) % 256
    status, page = await upload(api, bytes(pdf))
    assert status == 200 and 'data-verdict="modified"' in page and "bị thay đổi" in page


async def test_a_pdf_without_signature_is_unsigned(api: Api) -> None:
    from fpdf import FPDF

    doc = FPDF()
    doc.add_page()
    status, page = await upload(api, bytes(doc.output()))
    assert status == 200 and 'data-verdict="unsigned"' in page


async def test_bad_uploads_get_a_clear_message_never_a_500(api: Api) -> None:
    status, page = await upload(api, b"hello, not a pdf", "note.txt")
    assert status == 400 and "không phải tệp PDF" in page
    status, page = await upload(api, b"%PDF-1.7\nbroken beyond repair")
    assert status == 400 and "bị hỏng" in page
    status, page = await upload(api, b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024 + 10))
    assert status == 413 and "lớn hơn 10 MB" in page
    status, page = await upload(api, b"%PDF-1.7", field="other")
    assert status == 400 and "Chưa có tệp" in page
    async with api.client.post("/verify", data=b"x", headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400 and "biểu mẫu" in await r.text()
