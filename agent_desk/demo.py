"""/demo: a small web chat on Rasa's REST channel, through a same-origin proxy.

The browser never talks to Rasa directly (no CORS, no token in the page). Its conversation id is a
random value kept in an HttpOnly cookie, so a visitor can only read their own conversation.

Rasa's REST channel cannot push: agent messages appended with `output_channel=latest` are recorded
in the tracker but not delivered. So the page shows bot messages from the tracker: after each send,
and by polling `/demo/api/messages` every few seconds. The poll is answered without calling Rasa
unless the event broker reported something new in this conversation.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agent_desk import bot_failures
from agent_desk.handoff_store import HandoffStore
from agent_desk.keys import DESK, SETTINGS
from agent_desk.security import set_cookie
from agent_desk.text_files import TEXTS_DIR, Texts, load_texts
from agent_desk.transcript import message_from_event
from common.rasa_client import RasaError

DEMO_COOKIE = "desk_demo"
MAX_MESSAGE = 500
RATE_LIMIT = 20  # messages per minute per visitor
# The visitor's messages when their message cannot go through, with the placeholders each fills in.
TEXTS_FILE = TEXTS_DIR / "web_chat.yml"
REQUIRED_TEXTS: dict[str, tuple[str, ...]] = {
    "reload_page": (),
    "invalid_data": (),
    "empty_message": (),
    "message_too_long": ("limit",),
    "too_fast": (),
    "bot_unavailable_retry": (),
    "bot_unavailable": (),
    "bad_cursor": (),
}


def _sender(request: web.Request) -> str | None:
    value = request.cookies.get(DEMO_COOKIE, "")
    return f"demo-{value}" if value.isascii() and value.isalnum() and 16 <= len(value) <= 64 else None


def bot_messages(events: list[dict[str, Any]], after: int) -> tuple[list[dict[str, Any]], int]:
    """Bot messages among tracker events with index >= after; and the next cursor."""
    out = []
    for event in events[after:]:
        if event.get("event") == "bot":
            message = message_from_event(event, customer=True)
            if message:
                out.append(message)
    return out, len(events)


def history(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The whole conversation so far, the visitor's messages too, for a reloaded page; a button the
    visitor pressed shows with its title (its payload is what the tracker holds)."""
    out: list[dict[str, Any]] = []
    titles: dict[str, str] = {}
    for event in events:
        if event.get("event") not in {"user", "bot"}:
            continue
        message = message_from_event(event, customer=True)
        if not message:
            continue
        if message["kind"] == "user":
            text = str(message.get("text") or "")
            if not text:
                continue
            out.append({"kind": "user", "text": titles.get(text, text), "ts": message.get("ts")})
        else:
            for button in message.get("buttons") or []:
                if button.get("payload") and button.get("title"):
                    titles[str(button["payload"])] = str(button["title"])
            out.append({**message, "kind": "bot"})
    return out, len(events)


class RateLimiter:
    def __init__(self, limit: int, window: float = 60) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] < now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 10_000:
            self._hits.clear()
        return True


LIMITER = web.AppKey("demo_limiter", RateLimiter)
TEXTS = web.AppKey("demo_texts", Texts)


async def demo_page(request: web.Request) -> web.StreamResponse:
    response = aiohttp_jinja2.render_template("demo.html", request, {})
    if _sender(request) is None:
        set_cookie(response, request, DEMO_COOKIE, secrets.token_hex(16), None)
    return response


async def _messages(desk: HandoffStore, sender: str, after: int) -> dict[str, Any]:
    version = desk.version(sender)  # read before the tracker: a later event then forces a re-read
    tracker = await desk.rasa.tracker(sender)
    msgs, cursor = bot_messages(tracker.get("events") or [], after)
    return {"messages": msgs, "cursor": cursor, "version": version}


def _error(request: web.Request, text: str, status: int, **values: object) -> web.Response:
    message = request.app[TEXTS].get(text, **values)
    return web.json_response({"error": "demo", "message": message}, status=status)


async def send(request: web.Request) -> web.StreamResponse:
    sender = _sender(request)
    if sender is None:
        return _error(request, "reload_page", 400)
    try:
        data = await request.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
        return _error(request, "invalid_data", 400)
    text = str(data.get("message", "") if isinstance(data, dict) else "").strip()
    after = data.get("cursor", 0) if isinstance(data, dict) else 0
    if not text:
        return _error(request, "empty_message", 400)
    if len(text) > MAX_MESSAGE:
        return _error(request, "message_too_long", 400, limit=MAX_MESSAGE)
    if not isinstance(after, int) or after < 0:
        after = 0
    if not request.app[LIMITER].allow(sender):
        return _error(request, "too_fast", 429)
    desk: HandoffStore = request.app[DESK]
    try:
        await desk.rasa.rest_message(sender, text)
    except RasaError as exc:
        # The bot failed on the message: it goes to the agents' queue ("bot lỗi"), the visitor is told.
        reply = await bot_failures.from_web_chat(desk, sender, text, str(exc))
        return web.json_response({"messages": [reply], "cursor": after, "version": ""})
    try:
        return web.json_response(await _messages(desk, sender, after))
    except RasaError:
        return _error(request, "bot_unavailable_retry", 502)


async def poll(request: web.Request) -> web.StreamResponse:
    sender = _sender(request)
    if sender is None:
        return web.json_response({"messages": [], "cursor": 0, "version": ""})
    desk: HandoffStore = request.app[DESK]
    raw = request.query.get("after", "0")
    # ASCII digits only: int() also reads "٣" or "３" (and "1_0", " 3").
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        return _error(request, "bad_cursor", 400)
    after = int(raw)
    if request.query.get("history") == "1":
        # A (re)loaded page: the conversation from the start, then polls from the returned cursor.
        try:
            tracker = await desk.rasa.tracker(sender)
        except RasaError:
            return _error(request, "bot_unavailable", 502)
        msgs, cursor = history(tracker.get("events") or [])
        return web.json_response({"messages": msgs, "cursor": cursor, "version": desk.version(sender)})
    if request.query.get("version") == desk.version(sender):
        return web.json_response({"messages": [], "cursor": after, "version": desk.version(sender)})
    try:
        return web.json_response(await _messages(desk, sender, after))
    except RasaError:
        return _error(request, "bot_unavailable", 502)


async def reset(request: web.Request) -> web.StreamResponse:
    response = web.json_response({"status": "new"})
    set_cookie(response, request, DEMO_COOKIE, secrets.token_hex(16), None)
    return response


def setup_routes(app: web.Application) -> None:
    if not app[SETTINGS].demo_enabled:
        return  # off (the production default unless DESK_DEMO_ENABLED=1): every /demo path is a 404
    app[LIMITER] = RateLimiter(RATE_LIMIT)
    app[TEXTS] = load_texts(TEXTS_FILE, REQUIRED_TEXTS)
    app.router.add_get("/demo", demo_page)
    app.router.add_post("/demo/api/send", send)
    app.router.add_get("/demo/api/messages", poll)
    app.router.add_post("/demo/api/reset", reset)
