"""Routes and template data of assignment: the agent's status in the header, transfers on the
conversation page, the supervisor's takeover and the presence table."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent_desk import presence, transfer
from agent_desk.accounts import Agent
from agent_desk.desk import Desk
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError, Handoff
from agent_desk.keys import DESK, ENGINE, SETTINGS
from agent_desk.request_helpers import (
    ascii_number,
    error_response,
    handoff_id_of,
    read_form,
    safe_next,
    wants_json,
)
from agent_desk.security import login_required


async def header_context(request: web.Request) -> dict[str, Any]:
    """Jinja context processor: the logged-in agent's status for the selector in base.html."""
    agent: Agent | None = request.get("agent")
    if agent is None or ENGINE not in request.app:
        return {}
    return {
        "my_status": await presence.chosen_status(request.app[ENGINE], agent),
        "status_next": request.path_qs if request.method == "GET" else "/",
    }


async def conversation_context(request: web.Request, handoff: Handoff) -> dict[str, Any]:
    """What conversation.html needs for the transfer card and the labels of transfer notes."""
    desk: Desk = request.app[DESK]
    return {
        "colleagues": await presence.list_agents(desk.engine, desk.settings),
        "transfer_notes": await transfer.note_labels(desk, handoff.sender_id),
    }


async def supervisor_context(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    return {
        "presence": await presence.list_agents(request.app[ENGINE], settings),
        "auto_assign": settings.auto_assign,
        "max_per_agent": settings.max_conversations_per_agent,
    }


def _agent_id(raw: str) -> int | None:
    """The form's `to`: "queue", or an agent id in ASCII digits."""
    if raw == "queue":
        return None
    value = ascii_number(raw, 10)
    if value is None or not 0 < value < 2**31:
        raise DeskError(TEXTS.get("transfer_target"), 400)
    return value


@login_required()
async def set_status(request: web.Request) -> web.StreamResponse:
    agent: Agent = request["agent"]
    form = await read_form(request)
    status = form.get("status", "")
    if status not in presence.STATUSES:
        return error_response(request, DeskError(TEXTS.get("bad_status"), 400), back="/")
    await presence.set_status(request.app[ENGINE], agent, status)
    request.app[DESK].hub.publish("presence", {"agent_id": agent.id, "status": status})
    if wants_json(request):
        return web.json_response({"status": status})
    raise web.HTTPSeeOther(safe_next(form.get("next")))


@login_required()
async def transfer_conversation(request: web.Request) -> web.StreamResponse:
    handoff_id = handoff_id_of(request)
    back = f"/conversations/{handoff_id}"
    try:
        form = await read_form(request)
        kind = await transfer.transfer(
            request.app[DESK],
            handoff_id,
            request["agent"],
            _agent_id(form.get("to", "")),
            form.get("note", ""),
        )
    except DeskError as exc:
        return error_response(request, exc, back=back)
    # The owner who gave it away goes back to the queue; a supervisor stays to watch.
    target = back if request["agent"].is_supervisor else "/"
    if wants_json(request):
        return web.json_response({"status": kind, "url": target})
    raise web.HTTPSeeOther(target)


@login_required(role="supervisor")
async def take_over(request: web.Request) -> web.StreamResponse:
    handoff_id = handoff_id_of(request)
    back = f"/conversations/{handoff_id}"
    try:
        form = await read_form(request)
        await transfer.take_over(request.app[DESK], handoff_id, request["agent"], form.get("note", ""))
    except DeskError as exc:
        return error_response(request, exc, back=back)
    if wants_json(request):
        return web.json_response({"status": "active", "url": back})
    raise web.HTTPSeeOther(back)


@login_required()
async def presence_api(request: web.Request) -> web.Response:
    agents = await presence.list_agents(request.app[ENGINE], request.app[SETTINGS])
    return web.json_response({"agents": [p.as_json() for p in agents]})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/status", set_status)
    r.add_get("/api/presence", presence_api)
    r.add_post(r"/conversations/{id:[0-9]+}/transfer", transfer_conversation)
    r.add_post(r"/conversations/{id:[0-9]+}/takeover", take_over)
