"""HTTP handlers of the desk: login, queue, conversation, supervisor, canned responses, SSE.

Their routes, and every other module's, are registered by agent_desk/routes.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agent_desk import accounts, assignment_views, channel_window_views, search_views, ux
from agent_desk.accounts import Agent
from agent_desk.desk import Desk
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import CLOSE_TAGS, DeskError, Handoff
from agent_desk.keys import DESK, ENGINE, SETTINGS
from agent_desk.request_helpers import (
    bounded_id,
    error_response,
    handoff_id_of,
    read_form,
    safe_next,
    wants_json,
)
from agent_desk.security import (
    THROTTLE,
    client_ip,
    end_session,
    login_required,
    session_valid,
    start_session,
)
from agent_desk.signing_client import SigningError
from agent_desk.transcript import messages
from common.chat_identity import chat_channel_of
from common.rasa_client import RasaError

log = logging.getLogger(__name__)
MAX_TRANSCRIPT = 300  # messages rendered on a conversation page
KEEPALIVE = 15.0  # seconds between an event stream's keep-alive lines (and session checks)


def username_tag(username: str) -> str:
    """A stable tag for a login name in logs: an operator can match it with the same hash of a name
    they suspect, and nothing typed into the field is written out."""
    return "#" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:10]


# ---------------------------------------------------------------------- health, login
async def health(request: web.Request) -> web.Response:
    desk: Desk = request.app[DESK]
    return web.json_response({"status": "ok", "events_seen": desk.events_seen})


@aiohttp_jinja2.template("login.html")
async def login_form(request: web.Request) -> dict[str, Any]:
    return {
        "next": safe_next(request.query.get("next")),
        "error": None,
        "expired": request.query.get("expired") == "1",
    }


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = str(form.get("username", ""))[:64].strip().lower()
    password = str(form.get("password", ""))[:1024]
    next_url = safe_next(str(form.get("next", "")))
    throttle = request.app[THROTTLE]
    keys = (username, client_ip(request))
    if throttle.blocked(*keys):
        return aiohttp_jinja2.render_template(
            "login.html",
            request,
            {"next": next_url, "error": TEXTS.get("login_throttled")},
            status=429,
        )
    agent = await accounts.authenticate(request.app[ENGINE], username, password)
    if agent is None:
        throttle.failed(*keys)
        # Not the name itself: people type phone numbers, e-mails and even passwords into it.
        log.info("failed login for user %s from %s", username_tag(username), client_ip(request))
        return aiohttp_jinja2.render_template(
            "login.html", request, {"next": next_url, "error": TEXTS.get("login_failed")}, status=401
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
        handoff = await desk.get(bounded_id(request.query["conversation"]))
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
                    if sub.closed:
                        break  # the desk is stopping (Hub.close_all)
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
        return None, TEXTS.get("request_info_failed", error=exc)
    if info is None:
        return None, TEXTS.get("request_unknown", code=handoff.request_code)
    return info, None


@login_required()
async def conversation_page(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    agent: Agent = request["agent"]
    handoff = await desk.get(handoff_id_of(request))
    if handoff is None:
        raise web.HTTPNotFound(text=TEXTS.get("not_found"))
    owned = handoff.status == "active" and handoff.agent_id == agent.id
    if owned:
        await desk.touch(handoff.id, agent)
    transcript_error = None
    try:
        tracker = await desk.rasa.tracker(handoff.sender_id)
        msgs = messages(tracker.get("events") or [])
        if len(msgs) > MAX_TRANSCRIPT:
            transcript_error = TEXTS.get("transcript_cut", count=MAX_TRANSCRIPT)
            msgs = msgs[-MAX_TRANSCRIPT:]
    except RasaError as exc:
        msgs, transcript_error = [], TEXTS.get("transcript_failed", error=exc)
    info, info_error = await _request_info(desk, handoff)
    try:
        # The bot files any other input channel as "rest" (common/chat_identity.py).
        channel = chat_channel_of(handoff.channel)
        notices, notices_error = await desk.signing.notices(channel, handoff.sender_id), None
    except SigningError as exc:
        notices, notices_error = [], TEXTS.get("notices_failed", error=exc)
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
            **await channel_window_views.conversation_context(request, handoff, msgs),  # bot lỗi, Zalo window
        },
    )


@login_required()
async def claim(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff_id = handoff_id_of(request)
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
    handoff_id = handoff_id_of(request)
    try:
        form = await read_form(request)
        await desk.reply(handoff_id, request["agent"], form.get("text", ""))
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff_id}")
    if wants_json(request):
        return web.json_response({"status": "sent"})
    raise web.HTTPSeeOther(f"/conversations/{handoff_id}")


@login_required()
async def hand_back(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff_id = handoff_id_of(request)
    try:
        form = await read_form(request)
        await desk.hand_back(handoff_id, request["agent"], form.get("tag", ""))
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff_id}")
    if wants_json(request):
        return web.json_response({"status": "closed", "url": "/"})
    raise web.HTTPSeeOther("/")


@login_required()
async def add_note(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    handoff = await desk.get(handoff_id_of(request))
    if handoff is None:
        raise web.HTTPNotFound()
    try:
        form = await read_form(request)
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
    form = await read_form(request)
    raw_id = form.get("id", "")
    try:
        await desk.save_canned(
            request["agent"],
            bounded_id(raw_id) if raw_id else None,
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
    await request.app[DESK].delete_canned(bounded_id(request.match_info["id"]))
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
