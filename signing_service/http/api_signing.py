"""HTTP endpoints of OTP signing sessions (logic in signing_flow)."""

from __future__ import annotations

from aiohttp import web

from common.chat_identity import DEFAULT_CHAT_CHANNEL, SESSION_CHANNELS

from .. import certificate, signing_flow, verification
from ..errors import ApiError
from ..links import check_certificate_link
from ..models import Request, SigningSession
from .chat_headers import chat_user
from .inputs import choice, int_list, json_body, opt_str, request_code
from .keys import ctx
from .link_pages import LINK_PAGES, link_page
from .pdf_response import pdf_response

routes = web.RouteTableDef()
MAX_DOCUMENTS = 10


def _session_id(request: web.Request) -> str:
    sid = request.match_info["id"]
    if not 16 <= len(sid) <= 64 or not all(ch.isalnum() or ch in "-_" for ch in sid):
        raise ApiError(404, "session_not_found")
    return sid


@routes.post("/v1/signing-sessions")
async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    raw_code = opt_str(body, "request_code", 40)
    if not raw_code:
        raise ApiError(400, "invalid_request_code")
    order = signing_flow.SigningOrder(
        request_code=request_code(raw_code),
        document_ids=tuple(int_list(body, "document_ids", MAX_DOCUMENTS) if "document_ids" in body else []),
        channel=choice(body, "channel", {"sms", "email"}),
        chat_channel=choice(body, "chat_channel", SESSION_CHANNELS, DEFAULT_CHAT_CHANNEL),
        chat_user=opt_str(body, "chat_user", 128),
        reuse_verification=body.get("auth") == "verification",
    )
    if body.get("consent") is not True:
        raise ApiError(400, "consent_required")
    if not order.document_ids:
        raise ApiError(400, "no_documents")
    who = chat_user(request)
    result = await signing_flow.create_session(ctx(request), order, who)
    return web.json_response(result, status=200 if result.get("status") == "signed" else 201)


@routes.post("/v1/signing-sessions/{id}/resend")
async def resend(request: web.Request) -> web.Response:
    return web.json_response(await signing_flow.resend(ctx(request), _session_id(request)))


@routes.get("/v1/signing-sessions/{id}/certificate")
async def certificate_pdf(request: web.Request) -> web.Response:
    """The sealed signing certificate of a signed session (service token; a chat user must be
    verified for the session's request)."""
    c = ctx(request)
    sid = _session_id(request)
    who = chat_user(request)
    if who is not None:  # checked before anything is built
        async with c.db.read() as s:
            sess = await s.get(SigningSession, sid)
            if sess is None:
                raise ApiError(404, "session_not_found")
            req = await s.get(Request, sess.request_id)
            assert req is not None
            await verification.require(c, s, req, who)
    code, pdf = await certificate.get(c, sid)
    return pdf_response(pdf, f"bien-ban-ky-so-{code}.pdf")


@routes.get("/v1/signing-sessions/{id}/certificate/file")
async def certificate_file(request: web.Request) -> web.Response:
    """The certificate behind the expiring link sent in the customer's chat (the HMAC replaces the
    token, as for document links)."""
    c = ctx(request)
    sid = request.match_info["id"]
    why = check_certificate_link(
        c.settings.secret_key,
        sid,
        request.query.get("expires", ""),
        request.query.get("sig", ""),
        c.clock.now(),
    )
    if why:
        return link_page(403, *LINK_PAGES[why])
    try:
        code, pdf = await certificate.get(c, sid)
    except ApiError:
        return link_page(404, "Không tìm thấy biên bản", "Phiên ký này không có hoặc chưa ký xong.")
    return pdf_response(pdf, f"bien-ban-ky-so-{code}.pdf", download=request.query.get("download") == "1")


@routes.post("/v1/signing-sessions/{id}/verify")
async def verify(request: web.Request) -> web.Response:
    sid = _session_id(request)
    body = await json_body(request)
    return web.json_response(await signing_flow.verify(ctx(request), sid, body.get("otp")))
