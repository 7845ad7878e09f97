"""The desk's API for the other processes (not for browsers): a bearer token, no session, no cookies.

`GET /api/queue/position`: a waiting customer's place in the queue and expected wait
(agent_desk/queue_wait.py), asked by the action server when they ask how long they still have to wait.
The conversation's sender id comes percent-encoded in `X-Chat-User`, not in the query string (proxies
log query strings; sender ids identify customers). The token is DESK_API_TOKEN (its development
default is refused in production).
"""

from __future__ import annotations

import hmac
import logging
from urllib.parse import unquote

from aiohttp import web

from agent_desk import queue_wait
from agent_desk.keys import ENGINE, SETTINGS
from common.chat_identity import CHAT_USER_HEADER

log = logging.getLogger(__name__)
MAX_SENDER = 255  # desk_handoffs.sender_id


def _decodable(request: web.Request) -> bool:
    try:
        unquote(request.headers.get(CHAT_USER_HEADER, ""), errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def _authorised(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[SETTINGS].api_token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


async def queue_position(request: web.Request) -> web.Response:
    if not _authorised(request):
        return web.json_response(
            {"error": "unauthorized", "message": "Thiếu hoặc sai mã truy cập."}, status=401
        )
    sender = (
        unquote(request.headers.get(CHAT_USER_HEADER, ""), errors="strict") if _decodable(request) else ""
    )
    if not sender or len(sender) > MAX_SENDER:
        return web.json_response(
            {"error": "bad_sender", "message": f"{CHAT_USER_HEADER} phải có từ 1 đến {MAX_SENDER} ký tự."},
            status=400,
        )
    place = await queue_wait.place_of(request.app[ENGINE], request.app[SETTINGS], sender)
    # Sender ids identify customers: only the outcome is logged.
    log.info("queue position asked: %s (place %s of %s)", place.status, place.position, place.waiting_total)
    return web.json_response(place.as_json(), headers={"Cache-Control": "no-store"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/queue/position", queue_position)
