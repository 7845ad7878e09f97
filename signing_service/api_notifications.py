"""A verified chat user's notifications for a request: ask, subscribe ("Nhận thông báo"), stop."""

from __future__ import annotations

from aiohttp import web

from . import notifications
from .api_verification import required_chat_user
from .context import ctx
from .inputs import request_code

routes = web.RouteTableDef()
PATH = "/v1/requests/{code}/notifications"


@routes.get(PATH)
async def status(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    return web.json_response(await notifications.subscription_status(ctx(request), code, who))


@routes.post(PATH)
async def subscribe(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    return web.json_response(await notifications.set_subscribed(ctx(request), code, who, True))


@routes.delete(PATH)
async def stop(request: web.Request) -> web.Response:
    who = required_chat_user(request)
    code = request_code(request.match_info["code"])
    return web.json_response(await notifications.set_subscribed(ctx(request), code, who, False))
