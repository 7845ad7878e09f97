"""HTTP routes of the desk: login, queue, conversation, supervisor, canned responses, SSE, demo."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp_jinja2
from aiohttp import web

from agent_desk import accounts, channel_window, demo, search_views
from agent_desk.accounts import Agent
from agent_desk.desk import CLOSE_TAGS, Desk, DeskError, Handoff
from agent_desk.keys import DESK, ENGINE, SETTINGS
from agent_desk.security import (
    client_ip,
    end_session,
    login_required,
    session_valid,
    start_session,
)
from agent_desk.signing_client import SigningError
from agent_desk.transcript import messages
from common.chat_identity import CHAT_CHANNELS
from common.rasa_client import RasaError

log = logging.getLogger(__name__)
MAX_TRANSCRIPT = 300  # messages rendered on a conversation page
KEEPALIVE = 15.0  # seconds between an event stream's keep-alive lines (and session checks)


def wants_json(request: web.Request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch" or "application/json" in request.headers.get(
        "Accept", ""
    )


def error_response(request: web.Request, exc: DeskError, **context: Any) -> web.StreamResponse:
    if wants_json(request):
        return web.json_response({"error": "refused", "message": exc.message}, status=exc.status)
    return aiohttp_jinja2.render_template(
        "error.html", request, {"message": exc.message, **context}, status=exc.status
    )


def ascii_number(raw: str, max_digits: int) -> int | None:
    """A non-negative number written in ASCII digits only, or None. (str.isdigit() is also true for
    "²", "٣" or "３": int() rejects the first and reads the others as 3, an alias of the real id.)"""
    if not raw or len(raw) > max_digits or not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


def _bounded_id(raw: str) -> int:
    """A positive database id from the URL; anything else is a 404 (never an overflow in the DB)."""
    value = ascii_number(raw, 10)
    if value is None or not 0 < value < 2**31:
        raise web.HTTPNotFound()
    return value


def _handoff_id(request: web.Request) -> int:
    return _bounded_id(request.match_info["id"])


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise DeskError("Dữ liệu gửi lên không hợp lệ.", 400) from None
        if not isinstance(data, dict):
            raise DeskError("Dữ liệu gửi lên không hợp lệ.", 400)
        return {k: v for k, v in data.items() if isinstance(v, str)}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def username_tag(username: str) -> str:
    """A stable tag for a login name in logs: an operator can match it with the same hash of a name
    they suspect, and nothing typed into the field is written out."""
    return "#" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:10]


def _unsafe_char(c: str) -> bool:
    return c == "\\" or c.isspace() or unicodedata.category(c) in {"Cc", "Cf"}


def _safe_next(target: str | None) -> str:
    """Where to go after login: a local path, else the queue page. An attacker's link cannot bounce a
    fresh login to another site: browsers read "/\\evil", "//evil" and "/<tab>/evil" as another host,
    and a proxy may decode "%2F%2Fevil" on the way, so none of these (as sent or %-decoded up to three
    times) pass; neither does anything with a scheme, a host, a backslash, a space or a control
    character."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return "/"
    decoded = target
    for level in range(4):
        if decoded.startswith(("//", "/\\")) or any(_unsafe_char(c) for c in decoded):
            return "/"
        if level < 3:
            decoded = unquote(decoded)
    try:
        parts = urlsplit(target)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    return target


# ---------------------------------------------------------------------- health, login
async def health(request: web.Request) -> web.Response:
    desk: Desk = request.app[DESK]
    return web.json_response({"status": "ok", "events_seen": desk.events_seen})


@aiohttp_jinja2.template("login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    return {
        "next": _safe_next(request.query.get("next")),
        "error": None,
        "expired": request.query.get("expired") == "1",
    }


async def login(request: web.Request) -> web.StreamResponse:
    from agent_desk.app import THROTTLE

    form = await request.post()
    username = str(form.get("username", ""))[:64].strip().lower()
    password = str(form.get("password", ""))[:1024]
    next_url = _safe_next(str(form.get("next", "")))
    throttle = request.app[THROTTLE]
    keys = (username, client_ip(request))
    if throttle.blocked(*keys):
        return aiohttp_jinja2.render_template(
            "login.html",
            request,
            {"next": next_url, "error": "Đăng nhập sai quá nhiều lần. Hãy thử lại sau 15 phút."},
            status=429,
        )
    agent = await accounts.authenticate(request.app[ENGINE], username, password)
    if agent is None:
        throttle.failed(*keys)
        # Not the name itself: people type phone numbers, e-mails and even passwords into it.
        log.info("failed login for user %s from %s", username_tag(username), client_ip(request))
        return aiohttp_jinja2.render_template(
            "login.html", request, {"next": next_url, "error": "Sai tên đăng nhập hoặc mật khẩu."}, status=401
        )
    throttle.succeeded(*keys)
    if agent.role == accounts.TRAINER and next_url == "/":
        next_url = "/training"  # trainers land on their workbench, not on the queue they cannot open
    response = web.Response(status=303, headers={"Location": next_url})
    await start_session(request, response, agent)
    log.info("%s logged in", agent.username)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login"})
    await end_session(request, response)
    return response


# ---------------------------------------------------------------------- queue
@login_required()
@aiohttp_jinja2.template("queue.html")
async def queue_page(request: web.Request) -> dict[str, Any]:
    desk: Desk = request.app[DESK]
    return {"snapshot": await desk.queue_snapshot(), "now": time.time(), **await ux.queue_context(request)}


@login_required()
async def queue_api(request: web.Request) -> web.Response:
    return web.json_response(await request.app[DESK].queue_snapshot())


@login_required()
async def events_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: queue snapshots for everyone, new messages of one conversation if asked."""
    desk: Desk = request.app[DESK]
    conversation = None
    if "conversation" in request.query:
        handoff = await desk.get(_bounded_id(request.query["conversation"]))
        if handoff is None:
            raise web.HTTPNotFound()
        conversation = handoff.sender_id
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)

    async def send(kind: str, data: Any) -> None:
        await response.write(f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode())

    with desk.hub.subscribe(conversation) as sub:
        try:
            await send("queue", await desk.queue_snapshot())
            check_at = time.monotonic() + KEEPALIVE
            while not sub.closed:
                try:
                    kind, data = await asyncio.wait_for(
                        sub.queue.get(), timeout=max(0.0, check_at - time.monotonic())
                    )
                    await send(kind, data)
                except asyncio.TimeoutError:
                    pass
                if time.monotonic() >= check_at:
                    # The stream outlives the request that opened it: it ends with its session
                    # (idle, too old, logged out). Streaming does not count as use.
                    if not await session_valid(request):
                        break
                    await response.write(b": keep-alive\n\n")
                    check_at = time.monotonic() + KEEPALIVE
        except ConnectionResetError:
            pass  # the browser went away (page closed or navigated)
    return response


# ---------------------------------------------------------------------- conversation
async def _request_info(desk: Desk, handoff: Handoff) -> tuple[dict[str, Any] | None, str | None]:
    if not handoff.request_code:
        return None, None
    try:
        info = await desk.signing.request_info(handoff.request_code)
    except SigningError as exc:
        return None, f"Không tải được thông tin yêu cầu: {exc}."
    if info is None:
        return None, f"Không tìm thấy yêu cầu {handoff.request_code}."
    return info, None


@login_required()
async def conversation_page(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    agent: Agent = request["agent"]
    handoff = await desk.get(_handoff_id(request))
    if handoff is None:
        raise web.HTTPNotFound(text="Không tìm thấy hội thoại.")
    owned = handoff.status == "active" and handoff.agent_id == agent.id
    if owned:
        await desk.touch(handoff.id, agent)
    transcript_error = None
    try:
        tracker = await desk.rasa.tracker(handoff.sender_id)
        msgs = messages(tracker.get("events") or [])
        if len(msgs) > MAX_TRANSCRIPT:
            transcript_error = f"Chỉ hiển thị {MAX_TRANSCRIPT} tin nhắn gần nhất."
            msgs = msgs[-MAX_TRANSCRIPT:]
    except RasaError as exc:
        msgs, transcript_error = [], f"Không tải được lịch sử hội thoại: {exc}."
    info, info_error = await _request_info(desk, handoff)
    try:
        # The bot files any other input channel as "rest" (bot/actions/common.chat_channel).
        channel = handoff.channel if handoff.channel in CHAT_CHANNELS else "rest"
        notices, notices_error = await desk.signing.notices(channel, handoff.sender_id), None
    except SigningError as exc:
        notices, notices_error = [], f"Không tải được thông báo: {exc}."
    return aiohttp_jinja2.render_template(
        "conversation.html",
        request,
        {
            "handoff": handoff,
            "owned": owned,
            "messages": msgs,
            "transcript_error": transcript_error,
            "info": info,
            "info_error": info_error,
            "notices": notices,
            "notices_error": notices_error,
            "notes": await desk.notes(handoff.sender_id),
            "canned": await desk.canned(),
            "tags": CLOSE_TAGS,
            "now": time.time(),
            **await assignment_views.conversation_context(request, handoff),
            **await search_views.conversation_context(request, handoff),
            **await channel_window.conversation_context(request, handoff, msgs),  # bot lỗi, Zalo window
        },
    )


@login_required()
async def claim(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff_id = _handoff_id(request)
    try:
        await desk.claim(handoff_id, request["agent"])
    except DeskError as exc:
        return error_response(request, exc, back="/")
    if wants_json(request):
        return web.json_response({"status": "active", "url": f"/conversations/{handoff_id}"})
    raise web.HTTPSeeOther(f"/conversations/{handoff_id}")


@login_required()
async def reply(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff_id = _handoff_id(request)
    try:
        form = await _form(request)
        await desk.reply(handoff_id, request["agent"], form.get("text", ""))
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff_id}")
    if wants_json(request):
        return web.json_response({"status": "sent"})
    raise web.HTTPSeeOther(f"/conversations/{handoff_id}")


@login_required()
async def hand_back(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff_id = _handoff_id(request)
    try:
        form = await _form(request)
        await desk.hand_back(handoff_id, request["agent"], form.get("tag", ""))
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff_id}")
    if wants_json(request):
        return web.json_response({"status": "closed", "url": "/"})
    raise web.HTTPSeeOther("/")


@login_required()
async def add_note(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff = await desk.get(_handoff_id(request))
    if handoff is None:
        raise web.HTTPNotFound()
    try:
        form = await _form(request)
        await desk.add_note(handoff, request["agent"], form.get("text", ""))
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff.id}")
    raise web.HTTPSeeOther(f"/conversations/{handoff.id}#notes")


# ---------------------------------------------------------------------- canned responses
@login_required()
@aiohttp_jinja2.template("canned.html")
async def canned_page(request: web.Request) -> dict[str, Any]:
    return {"canned": await request.app[DESK].canned(), "error": None}


# Agents use canned replies (conversation page); only supervisors create, edit or delete them.
@login_required(role="supervisor")
async def canned_save(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    form = await _form(request)
    raw_id = form.get("id", "")
    try:
        await desk.save_canned(
            request["agent"],
            _bounded_id(raw_id) if raw_id else None,
            form.get("title", ""),
            form.get("text", ""),
        )
    except DeskError as exc:
        return aiohttp_jinja2.render_template(
            "canned.html", request, {"canned": await desk.canned(), "error": exc.message}, status=exc.status
        )
    raise web.HTTPSeeOther("/canned")


@login_required(role="supervisor")
async def canned_delete(request: web.Request) -> web.StreamResponse:
    await request.app[DESK].delete_canned(_bounded_id(request.match_info["id"]))
    raise web.HTTPSeeOther("/canned")


# ---------------------------------------------------------------------- supervisor
@login_required(role="supervisor")
@aiohttp_jinja2.template("supervisor.html")
async def supervisor_page(request: web.Request) -> dict[str, Any]:
    desk: Desk = request.app[DESK]
    settings = request.app[SETTINGS]
    return {
        "stats": await desk.stats(),
        "now": time.time(),
        "queue_timeout": settings.queue_timeout,
        "idle_timeout": settings.agent_idle_timeout,
        **await assignment_views.supervisor_context(request),
    }


@login_required(role="supervisor")
async def supervisor_api(request: web.Request) -> web.Response:
    stats = await request.app[DESK].stats()
    stats["open"] = [h.as_json() for h in stats["open"]]
    stats["now"] = time.time()  # the page's live figures (desk.js) count waits from it
    return web.json_response(stats)


@web.middleware
async def not_found_page(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """403, 404 (no route, bad id, /demo switched off), 405 and 413 as the desk's own Vietnamese page
    for browsers (agent_desk/ux.py); JSON for API callers."""
    return await ux.error_pages(request, handler)


# Imported last: assignment_views uses the helpers above (error_response, _form, ...).
from agent_desk import assignment_views, ux  # noqa: E402


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/health", health)
    r.add_get("/login", login_form)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_get("/", queue_page)
    r.add_get("/api/queue", queue_api)
    r.add_get("/api/events", events_stream)
    r.add_get(r"/conversations/{id:[0-9]+}", conversation_page)
    r.add_post(r"/conversations/{id:[0-9]+}/claim", claim)
    r.add_post(r"/conversations/{id:[0-9]+}/reply", reply)
    r.add_post(r"/conversations/{id:[0-9]+}/handback", hand_back)
    r.add_post(r"/conversations/{id:[0-9]+}/notes", add_note)
    r.add_get("/canned", canned_page)
    r.add_post("/canned", canned_save)
    r.add_post(r"/canned/{id:[0-9]+}/delete", canned_delete)
    r.add_get("/supervisor", supervisor_page)
    r.add_get("/api/supervisor", supervisor_api)
    demo.setup_routes(app)
    assignment_views.setup_routes(app)
    search_views.setup_routes(app)
    ux.setup_routes(app)  # timed-out customers' "Gọi lại" marker
