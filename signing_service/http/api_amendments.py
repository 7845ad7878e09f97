"""Amendment requests ("Yêu cầu hiệu chỉnh") on draft documents, and the staff list."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from common.chat_identity import DEFAULT_CHAT_CHANNEL, SESSION_CHANNELS

from .. import audit, verification
from ..doc_kinds import DOC_KINDS
from ..drafts import ensure_draft
from ..errors import ApiError
from ..models import Amendment, Document, Request
from ..requests_query import contacts_of, load_request
from ..text import clean_free_text
from ..timeline import iso
from ..workdays import VN_TZ
from .chat_headers import chat_user as chat_identity
from .inputs import choice, json_body, opt_str, req_int, request_code
from .keys import ctx

routes = web.RouteTableDef()
MIN_TEXT, MAX_TEXT = 5, 1000


@routes.post("/v1/requests/{code}/amendments")
async def create_amendment(request: web.Request) -> web.Response:
    c = ctx(request)
    code = request_code(request.match_info["code"])
    body = await json_body(request)
    doc_id = req_int(body, "document_id")
    raw = opt_str(body, "text", 4000, "") or ""
    chat_channel = choice(body, "chat_channel", SESSION_CHANNELS, DEFAULT_CHAT_CHANNEL)
    chat_user = opt_str(body, "chat_user", 128)
    text = clean_free_text(raw)
    if len(text) < MIN_TEXT:
        raise ApiError(400, "text_too_short", min_length=MIN_TEXT)
    if len(text) > MAX_TEXT:
        raise ApiError(400, "text_too_long", max_length=MAX_TEXT)
    now = c.clock.now()
    who = chat_identity(request)
    if who is not None:  # the verified chat user is who asks: one identity, the one checked below
        chat_channel, chat_user = who.channel, who.user
    async with c.db.write() as s:
        req = await load_request(s, code)
        await verification.require(c, s, req, who)
        doc = (
            await s.execute(
                select(Document).where(Document.id == doc_id, Document.request_id == req.id).with_for_update()
            )
        ).scalar_one_or_none()
        if doc is None:
            raise ApiError(404, "document_not_found")
        if doc.status == "signed":
            raise ApiError(409, "document_not_awaiting", document_id=doc_id, document_status=doc.status)
        # The amendment refers to a definite draft: render it if nobody has viewed it yet.
        await ensure_draft(s, req, doc, await contacts_of(s, req.id), c.fonts)
        amendment = Amendment(
            request_id=req.id,
            document_id=doc.id,
            text=text,
            chat_channel=chat_channel,
            status="open",
            created_at=now,
        )
        s.add(amendment)
        await s.flush()
        # The id makes the reference unique without a counter table.
        amendment.reference = f"HC-{now.astimezone(VN_TZ):%Y%m%d}-{amendment.id:04d}"
        doc.status = "amendment_requested"
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.customer_actor(chat_channel, chat_user),
            action="amendment_requested",
            channel=chat_channel,
            document_id=doc.id,
            document_sha256=doc.sha256,
            reference=amendment.reference,
            text_length=len(text),
        )
    return web.json_response(
        {"reference": amendment.reference, "document_id": doc_id, "status": "amendment_requested"}, status=201
    )


@routes.get("/v1/amendments")
async def list_amendments(request: web.Request) -> web.Response:
    q = select(Amendment, Request.code, Document.kind).join(Request, Request.id == Amendment.request_id)
    q = q.join(Document, Document.id == Amendment.document_id)
    if "request_code" in request.query:
        q = q.where(Request.code == request_code(request.query["request_code"]))
    status = request.query.get("status")
    if status is not None:
        if status not in {"open", "resolved"}:
            raise ApiError(400, "invalid_field", field="status")
        q = q.where(Amendment.status == status)
    async with ctx(request).db.read() as s:
        rows = (await s.execute(q.order_by(Amendment.id.desc()).limit(200))).all()
    return web.json_response(
        {
            "amendments": [
                {
                    "reference": a.reference,
                    "request_code": code,
                    "document_id": a.document_id,
                    "document_title": DOC_KINDS[kind],
                    "text": a.text,
                    "chat_channel": a.chat_channel,
                    "status": a.status,
                    "created_at": iso(a.created_at),
                }
                for a, code, kind in rows
            ]
        }
    )
