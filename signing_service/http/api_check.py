"""The public check page (`GET /verify`, `POST /verify` with the PDF in the form field `file`): was
this file sealed by this service, is it unchanged, which request and document kind, and when.

No token: a bank, a court or an inspector uses it. It shows no personal data (the request code
masked, no names); the file is read in memory, checked, and not kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from aiohttp import BodyPartReader, web
from sqlalchemy import select

from ..doc_kinds import DOC_KINDS
from ..drafts import sha256
from ..models import Document, Request, SigningCertificate, SigningSession
from ..workdays import VN_TZ
from .keys import ctx

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

routes = web.RouteTableDef()
CERTIFICATE_KIND = "signing_certificate"
CERTIFICATE_TITLE = "Biên bản xác nhận ký số"
MAX_BYTES = 10 * 1024 * 1024
# The signed copy a checked file matched: (document kind, version, signed at, request code).
_Found = tuple[str, int, datetime | None, str]
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),  # check.html.j2
    autoescape=True,
)


@dataclass(frozen=True)
class Result:
    verdict: str  # valid | modified | not_ours | unsigned | unknown_copy
    valid: bool
    headline: str
    detail: str
    known: bool = False
    request: str = ""
    kind: str = ""
    version: int = 0
    signed_at: str = ""
    sha256: str = ""
    timestamp: str = ""  # from a timestamp authority (PAdES B-T), when the signature has one
    ltv: bool = False  # validation data embedded (PAdES B-LT): checkable without this service


class BadUpload(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _page(
    status: int,
    result: Result | None = None,
    error: str | None = None,
    session: SessionSummary | None = None,
) -> web.Response:
    text = _ENV.get_template("check.html.j2").render(
        result=result, error=error, session=session, max_mb=MAX_BYTES // (1024 * 1024)
    )
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _masked(code: str) -> str:
    return f"{code[:6]}****{code[-3:]}"


@dataclass(frozen=True)
class SessionSummary:
    """What the certificate's QR code opens: the session's documents and their hashes, no names."""

    session_id: str
    request: str
    signed_at: str
    documents: list[dict[str, object]]
    certificate_sha256: str


def _local(ts: datetime | None) -> str:
    return f"{ts.astimezone(VN_TZ):%H:%M ngày %d/%m/%Y}" if ts else ""


async def _session_summary(request: web.Request, sid: str) -> SessionSummary | None:
    if not 16 <= len(sid) <= 64 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in sid):
        return None
    c = ctx(request)
    async with c.db.read() as s:
        sess = await s.get(SigningSession, sid)
        if sess is None or sess.state != "signed":
            return None
        code = (await s.execute(select(Request.code).where(Request.id == sess.request_id))).scalar_one()
        ids = [int(d["id"]) for d in sess.documents]
        rows = (
            await s.execute(
                select(Document.id, Document.kind, Document.version, Document.signed_sha256).where(
                    Document.id.in_(ids), Document.signing_session_id == sid
                )
            )
        ).all()
        cert = (
            await s.execute(select(SigningCertificate.sha256).where(SigningCertificate.session_id == sid))
        ).scalar_one_or_none()
    order = {i: n for n, i in enumerate(ids)}
    docs = [
        {"title": DOC_KINDS.get(kind, kind), "version": int(version), "sha256": digest or ""}
        for _id, kind, version, digest in sorted(rows, key=lambda r: order.get(r[0], 0))
    ]
    return SessionSummary(sid, _masked(code), _local(sess.finished_at), docs, cert or "")


@routes.get("/verify")
async def form(request: web.Request) -> web.Response:
    """The upload form; with `?phien=<session id>` (the certificate's QR code) the signed session's
    documents and their SHA-256 first, or a clear message when there is no such signed session."""
    sid = request.query.get("phien")
    if sid is None:
        return _page(200)
    summary = await _session_summary(request, sid.strip())
    if summary is None:
        return _page(404, error="Không tìm thấy phiên ký này. Vui lòng kiểm tra lại đường dẫn hoặc mã QR.")
    return _page(200, session=summary)


async def _read_upload(request: web.Request) -> bytes:
    if not request.content_type.startswith("multipart/form-data"):
        raise BadUpload(400, "Vui lòng chọn tệp PDF trong biểu mẫu rồi bấm Kiểm tra.")
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, BodyPartReader) and part.name == "file":
                data = bytearray()
                while chunk := await part.read_chunk(64 * 1024):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        raise BadUpload(
                            413, f"Tệp lớn hơn {MAX_BYTES // (1024 * 1024)} MB, không kiểm tra được."
                        )
                return bytes(data)
    except (ValueError, AssertionError):
        raise BadUpload(400, "Không đọc được biểu mẫu gửi lên. Vui lòng chọn lại tệp PDF.") from None
    raise BadUpload(400, "Chưa có tệp nào được chọn. Vui lòng chọn tệp PDF rồi bấm Kiểm tra.")


@routes.post("/verify")
async def check(request: web.Request) -> web.Response:
    try:
        pdf = await _read_upload(request)
        if not pdf.startswith(b"%PDF-"):
            raise BadUpload(
                400, "Tệp này không phải tệp PDF. Vui lòng chọn đúng tệp hồ sơ đã ký (đuôi .pdf)."
            )
    except BadUpload as bad:
        return _page(bad.status, error=bad.message)
    c = ctx(request)
    try:
        sig = await asyncio.get_running_loop().run_in_executor(None, c.sealer.check, pdf)
    except Exception:  # noqa: BLE001 (any parser failure of a foreign file is the file's fault)
        return _page(400, error="Tệp PDF bị hỏng hoặc không đọc được. Vui lòng chọn lại tệp gốc đã tải về.")
    digest = sha256(pdf)
    async with c.db.read() as s:
        row: Row[_Found] | _Found | None = (
            await s.execute(
                select(Document.kind, Document.version, Document.signed_at, Request.code)
                .join(Request, Request.id == Document.request_id)
                .where(Document.signed_sha256 == digest)
            )
        ).first()
        if row is None:  # a signing certificate is recognised the same way, by its stored bytes
            cert = (
                await s.execute(
                    select(SigningSession.finished_at, Request.code)
                    .join(SigningCertificate, SigningCertificate.session_id == SigningSession.id)
                    .join(Request, Request.id == SigningSession.request_id)
                    .where(SigningCertificate.sha256 == digest)
                )
            ).first()
            if cert is not None:
                row = (CERTIFICATE_KIND, 1, cert[0], cert[1])
    return _page(200, _verdict(sig, row, digest))


def _verdict(sig, row, digest: str) -> Result:  # type: ignore[no-untyped-def]
    if not sig.signed:
        return Result(
            "unsigned", False, "Tệp không có chữ ký số.", "Đây không phải hồ sơ đã được hệ thống ký số."
        )
    if not sig.intact:
        return Result(
            "modified",
            False,
            "Hồ sơ đã bị thay đổi sau khi ký.",
            "Nội dung tệp không còn khớp với chữ ký số: không dùng bản này. Vui lòng dùng bản gốc đã nhận.",
        )
    if not (sig.valid and sig.trusted):
        return Result(
            "not_ours",
            False,
            "Chữ ký số không phải của hệ thống chăm sóc khách hàng EVNCPC.",
            "Tệp có chữ ký số của một đơn vị khác hoặc chứng thư không hợp lệ.",
        )
    if row is None:
        return Result(
            "unknown_copy",
            False,
            "Chữ ký còn nguyên vẹn nhưng tệp không trùng bản hệ thống đã lưu.",
            "Tệp có thể đã được thêm nội dung sau khi ký. Vui lòng dùng bản gốc đã nhận.",
        )
    kind, version, signed_at, code = row
    return Result(
        "valid",
        True,
        "Hồ sơ hợp lệ: do hệ thống ký số và chưa bị thay đổi.",
        "Tệp trùng khớp từng byte với bản đã ký được lưu tại hệ thống.",
        known=True,
        request=_masked(code),
        kind=CERTIFICATE_TITLE if kind == CERTIFICATE_KIND else DOC_KINDS.get(kind, kind),
        version=int(version),
        signed_at=f"{signed_at.astimezone(VN_TZ):%H:%M ngày %d/%m/%Y}" if signed_at else "",
        sha256=digest,
        timestamp=f"{sig.timestamp_at.astimezone(VN_TZ):%H:%M:%S ngày %d/%m/%Y}"
        if sig.timestamp_valid
        else "",
        ltv=sig.ltv,
    )
