"""A verified chat user's notifications for a request: ask, subscribe ("Nhận thông báo"), stop.
Each call names a code the customer may have typed: charged as a code lookup (code_lookups)."""

from __future__ import annotations

from aiohttp import web

from common.chat_identity import CHAT_CHANNELS, valid_chat_user

from .. import deliveries, notifications
from ..errors import ApiError
from .chat_headers import required_chat_user, staff_only
from .code_lookups import charged_code_lookup
from .inputs import request_code
from .keys import ctx

routes = web.RouteTableDef()
PATH = "/v1/requests/{code}/notifications"


@routes.get(PATH)
async def status(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    with charged_code_lookup(request):
        return web.json_response(await notifications.subscription_status(ctx(request), code, who))


@routes.post(PATH)
async def subscribe(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    with charged_code_lookup(request):
        return web.json_response(await notifications.set_subscribed(ctx(request), code, who, True))


@routes.delete(PATH)
async def stop(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    with charged_code_lookup(request):
        return web.json_response(await notifications.set_subscribed(ctx(request), code, who, False))


@routes.get("/v1/notifications")
async def of_chat_user(request: web.Request) -> web.Response:
    """Staff (the desk): the notices of one conversation and how each went."""
    staff_only(request)
    channel = request.query.get("chat_channel", "")
    user = request.query.get("chat_user", "")
    if channel not in CHAT_CHANNELS:
        raise ApiError(400, "invalid_field", field="chat_channel")
    if not valid_chat_user(user):
        raise ApiError(400, "invalid_field", field="chat_user")
    return web.json_response({"notices": await deliveries.for_chat_user(ctx(request), channel, user)})
