"""Documents of a request: listing with expiring links, the PDF files, revision, verification, audit."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.orm import undefer

from .. import audit, events
from .. import verification as chat_verification
from ..context import Context
from ..db import rowcount
from ..doc_kinds import DOC_KINDS, STATUS_LABELS
from ..drafts import ensure_draft, sha256
from ..errors import ApiError
from ..links import check_link, make_certificate_link, make_link
from ..models import Amendment, AuditEvent, Document, Request
from ..requests_query import contacts_of, load_request, request_documents
from ..timeline import iso
from .chat_headers import chat_user, staff_only
from .inputs import path_int, request_code
from .keys import ctx
from .link_pages import LINK_PAGES, link_page
from .pdf_response import pdf_response

routes = web.RouteTableDef()


def document_json(c: Context, doc: Document) -> dict[str, Any]:
    now = c.clock.now()
    expires = int(now.timestamp()) + c.settings.link_ttl_seconds

    def link(variant: str) -> str:
        return make_link(
            c.settings.public_base_url, c.settings.secret_key, doc.id, variant, expires, doc.version
        )

    return {
        "id": doc.id,
        "kind": doc.kind,
        "title": DOC_KINDS[doc.kind],
        "status": doc.status,
        "status_label": STATUS_LABELS[doc.status],
        "version": doc.version,
        "sha256": doc.sha256,
        "original_url": link("original") if doc.sha256 else None,
        "signed_url": link("signed") if doc.status == "signed" and doc.signed_sha256 else None,
        # The signing certificate of the session that signed it (one per session, shared by its documents).
        "certificate_url": make_certificate_link(
            c.settings.public_base_url, c.settings.secret_key, doc.signing_session_id, expires
        )
        if doc.status == "signed" and doc.signing_session_id
        else None,
        "signed_at": iso(doc.signed_at),
        "links_expire_at": iso(now + timedelta(seconds=c.settings.link_ttl_seconds)),
    }


@routes.get("/v1/requests/{code}/documents")
async def list_documents(request: web.Request) -> web.Response:
    c = ctx(request)
    code = request_code(request.match_info["code"])
    who = chat_user(request)
    async with c.db.read() as s:
        req = await load_request(s, code)
        await chat_verification.require(c, s, req, who)
        docs = list((await s.execute(select(Document).where(Document.request_id == req.id))).scalars())
    if any(d.sha256 is None for d in docs):  # first view: render the drafts (a write)
        async with c.db.write() as s:
            req = await load_request(s, code)
            docs = await request_documents(c, s, req)
    docs.sort(key=lambda d: d.id)
    return web.json_response({"request_code": code, "documents": [document_json(c, d) for d in docs]})


@routes.get("/v1/documents/{id}/file")
async def document_file(request: web.Request) -> web.StreamResponse:
    """The PDF behind an expiring link; the HMAC replaces the bearer token here."""
    c = ctx(request)
    raw_id = request.match_info["id"]
    q = request.query
    variant = q.get("variant", "original")
    doc_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 9 else None
    why = (
        "invalid"
        if doc_id is None
        else check_link(
            c.settings.secret_key,
            doc_id,
            variant,
            q.get("expires", ""),
            q.get("sig", ""),
            c.clock.now(),
            q.get("v", "1"),
        )
    )
    if why or doc_id is None:
        return link_page(403, *LINK_PAGES[why or "invalid"])
    column = Document.signed_pdf if variant == "signed" else Document.pdf
    async with c.db.read() as s:
        row = (
            await s.execute(
                select(Document.kind, Document.version, column, Request.code)
                .join(Request, Request.id == Document.request_id)
                .where(Document.id == doc_id)
            )
        ).one_or_none()
    if row is not None and str(row[1]) != q.get("v", "1"):
        return link_page(403, *LINK_PAGES["superseded"])
    if row is None or row[2] is None:
        return link_page(404, "Không tìm thấy hồ sơ", "Hồ sơ này không có hoặc chưa được ký.")
    kind, _version, data, code = row
    name = f"{code}-{kind}{'-da-ky' if variant == 'signed' else ''}.pdf"
    return pdf_response(data, name, download=q.get("download") == "1")


@routes.post("/v1/documents/{id}/revise")
async def revise_document(request: web.Request) -> web.Response:
    """Staff re-issue a draft (e.g. after an amendment): new version, new hash, awaiting signature again."""
    staff_only(request)
    c = ctx(request)
    doc_id = path_int(request, "id", "document_not_found")
    now = c.clock.now()
    async with c.db.write() as s:
        doc = (
            await s.execute(select(Document).where(Document.id == doc_id).with_for_update())
        ).scalar_one_or_none()
        if doc is None:
            raise ApiError(404, "document_not_found")
        if doc.status == "signed":
            raise ApiError(409, "document_not_awaiting", document_id=doc_id)
        req = await s.get(Request, doc.request_id)
        assert req is not None
        old = doc.sha256
        doc.version += 1
        doc.sha256 = None
        doc.pdf = None
        doc.status = "awaiting_signature"
        doc.created_at = now
        await s.flush()
        await ensure_draft(s, req, doc, await contacts_of(s, req.id), c.fonts)
        answered = await s.execute(
            update(Amendment)
            .where(Amendment.document_id == doc_id, Amendment.status == "open")
            .values(status="resolved")
            .execution_options(synchronize_session=False)
        )
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.staff_actor(None),
            action="document_revised",
            document_id=doc_id,
            document_sha256=doc.sha256,
            previous_sha256=old,
            version=doc.version,
        )
        events.raise_event(
            s,
            request_id=req.id,
            # The customer asked for this change: tell them it was answered (the draft to sign again).
            kind=events.AMENDMENT_ANSWERED if rowcount(answered) else events.DOCUMENTS_READY,
            at=now,
            document_id=doc_id,
            version=doc.version,
            reason="revised",
        )
    return web.json_response(document_json(c, doc))


@routes.get("/v1/documents/{id}/verification")
async def verification(request: web.Request) -> web.Response:
    c = ctx(request)
    doc_id = path_int(request, "id", "document_not_found")
    async with c.db.read() as s:
        doc = (
            await s.execute(
                select(Document).options(undefer(Document.signed_pdf)).where(Document.id == doc_id)
            )
        ).scalar_one_or_none()
    if doc is None:
        raise ApiError(404, "document_not_found")
    if doc.signed_pdf is None:
        return web.json_response(
            {
                "document_id": doc_id,
                "signed": False,
                "intact": False,
                "valid": False,
                "trusted": False,
                "signer": None,
                "signed_at": None,
                "status": doc.status,
            }
        )
    check = await asyncio.get_running_loop().run_in_executor(None, c.sealer.check, doc.signed_pdf)
    return web.json_response(
        {
            "document_id": doc_id,
            "status": doc.status,
            "signed": check.signed,
            "intact": check.intact,
            "valid": check.valid,
            "trusted": check.trusted,
            "signer": check.signer,
            "seal": check.seal_subject,
            "signed_at": iso(check.signed_at),
            "reason": check.reason,
            "timestamped": check.timestamp_valid,
            "ltv": check.ltv,
            "draft_sha256": doc.sha256,
            "signed_sha256": doc.signed_sha256,
            "stored_hash_matches": sha256(doc.signed_pdf) == doc.signed_sha256,
        }
    )


@routes.get("/v1/requests/{code}/audit")
async def audit_trail(request: web.Request) -> web.Response:
    """Staff only: the trail names staff logins and the chat ids of every chat user of the request."""
    staff_only(request)
    code = request_code(request.match_info["code"])
    async with ctx(request).db.read() as s:
        req = await load_request(s, code)
        events = (
            await s.execute(select(AuditEvent).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id))
        ).scalars()
        out = [
            {
                "at": iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "channel": e.channel,
                "document_id": e.document_id,
                "document_sha256": e.document_sha256,
                "details": e.details,
            }
            for e in events
        ]
    return web.json_response({"request_code": code, "events": out})
