"""HTTP endpoints of chat-user verification (logic in verification) and the staff's OTP unfreeze."""

from __future__ import annotations

from aiohttp import web

from common.chat_identity import CONVERSATION_HEADER, MAX_CONVERSATION_ID

from .. import otp_budget, verification
from ..errors import ApiError
from ..requests_query import load_request
from .chat_headers import chat_user, required_chat_user, staff_only
from .inputs import choice, json_body, opt_str, request_code
from .keys import NAME_LOOKUPS, ctx

routes = web.RouteTableDef()


def _challenge_id(request: web.Request) -> str:
    cid = request.match_info["id"]
    if not 16 <= len(cid) <= 64 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in cid):
        raise ApiError(404, "challenge_not_found")
    return cid


@routes.get("/v1/requests/{code}/verification")
async def get_status(request: web.Request) -> web.Response:
    code = request_code(request.match_info["code"])
    return web.json_response(await verification.status(ctx(request), code, required_chat_user(request)))


@routes.delete("/v1/requests/{code}/verification")
async def unlink(request: web.Request) -> web.Response:
    """The customer's "hủy liên kết" (with chat headers), or staff revoking every chat user (without)."""
    code = request_code(request.match_info["code"])
    who = chat_user(request)
    by = "customer" if who else (request.query.get("by", "staff")[:64] or "staff")
    return web.json_response({"revoked": await verification.revoke(ctx(request), code, who, by)})


@routes.post("/v1/verifications")
async def start(request: web.Request) -> web.Response:
    body = await json_body(request)
    code = request_code(opt_str(body, "request_code", 40) or "")
    channel = choice(body, "channel", {"sms", "email"})
    purpose = choice(body, "purpose", {"view", "sign"}, "view")
    result = await verification.start(ctx(request), code, channel, required_chat_user(request), purpose)
    return web.json_response(result, status=201)


@routes.post("/v1/verifications/{id}/resend")
async def resend(request: web.Request) -> web.Response:
    return web.json_response(
        await verification.resend(ctx(request), _challenge_id(request), required_chat_user(request))
    )


@routes.post("/v1/verifications/{id}/verify")
async def check(request: web.Request) -> web.Response:
    cid = _challenge_id(request)
    body = await json_body(request)
    return web.json_response(
        await verification.check(ctx(request), cid, required_chat_user(request), body.get("otp"))
    )


@routes.post("/v1/verifications/contact")
async def contact(request: web.Request) -> web.Response:
    body = await json_body(request)
    code = request_code(opt_str(body, "request_code", 40) or "")
    phone = opt_str(body, "phone", 32)
    source = choice(body, "source", {"telegram_contact", "zalo_user_info"})
    own = body.get("own_number") is True
    who = required_chat_user(request)
    if source == "telegram_contact" and who.channel != "telegram":
        raise ApiError(400, "invalid_field", field="source")
    return web.json_response(await verification.by_contact(ctx(request), code, who, phone, source, own))


@routes.post("/v1/requests/{code}/otp-unfreeze")
async def unfreeze(request: web.Request) -> web.Response:
    """Staff only (no chat headers): lift the freeze after too many wrong codes."""
    staff_only(request)
    c = ctx(request)
    code = request_code(request.match_info["code"])
    body = await json_body(request)
    by = opt_str(body, "by", 64) or "staff"
    async with c.db.write() as s:
        req = await load_request(s, code)
        count = await otp_budget.unfreeze(s, req.id, by, c.clock.now())
    return web.json_response({"unfrozen": count})


@routes.post("/v1/chat-users/forget")
async def forget(request: web.Request) -> web.Response:
    """The customer's erasure request from the chat (chat headers, and the conversation id)."""
    who = required_chat_user(request)
    conversation = request.headers.get(CONVERSATION_HEADER, "").strip()[:MAX_CONVERSATION_ID]
    key = request.app[NAME_LOOKUPS].conversation_key(conversation) if conversation else None
    return web.json_response({"revoked": await verification.forget_chat_user(ctx(request), who, key)})
