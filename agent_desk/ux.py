"""What trying the desk as an agent showed (issue 18): customers who timed out in the queue today,
with a "Gọi lại" marker (who called them back, when), and the desk's own error pages."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web

from agent_desk import db
from agent_desk.accounts import Agent
from agent_desk.desk import Desk
from agent_desk.keys import DESK
from agent_desk.request_helpers import handoff_id_of, wants_json
from agent_desk.security import is_api, login_required
from agent_desk.vn_time import VN_TZ

# One row per timed-out handoff an agent called back (a new table: create_all makes it everywhere).
callbacks = sa.Table(
    "desk_callbacks",
    db.metadata,
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id"), primary_key=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("agent_name", sa.String(100), nullable=False),
    sa.Column("called_at", sa.Float, nullable=False),
)

MAX_LISTED = 100
# Error statuses the desk answers to a browser with its own page (JSON callers keep JSON).
PAGE_STATUSES = {403, 404, 405, 413}
MESSAGES = {
    403: "Bạn không có quyền dùng chức năng này.",
    404: "Không tìm thấy trang này. Đường dẫn có thể sai hoặc nội dung không còn nữa.",
    405: "Trang này không nhận thao tác đó (sai phương thức). Hãy quay lại và thử từ nút trên trang.",
    413: "Dữ liệu gửi lên quá lớn.",
}


def day_start(now: float) -> float:
    return datetime.fromtimestamp(now, VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


async def timed_out_today(desk: Desk, now: float | None = None) -> list[dict[str, Any]]:
    """Today's (Vietnamese day) handoffs that ended timed out in the queue, newest first, with the
    call-back marker if someone called the customer back."""
    now = time.time() if now is None else now
    h, c = db.handoffs, callbacks
    async with desk.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    h.c.id,
                    h.c.channel,
                    h.c.request_code,
                    h.c.requested_at,
                    h.c.queued_at,
                    h.c.closed_at,
                    c.c.agent_name.label("called_by"),
                    c.c.called_at,
                )
                .select_from(h.outerjoin(c, c.c.handoff_id == h.c.id))
                .where(h.c.status == "timed_out", h.c.closed_at >= day_start(now))
                .order_by(h.c.closed_at.desc())
                .limit(MAX_LISTED)
            )
        ).all()
    return [dict(r._mapping) for r in rows]


async def mark_called_back(desk: Desk, handoff_id: int, agent: Agent, now: float | None = None) -> bool:
    """Store who called the customer back and when; False if not a timed-out handoff. A second
    marker keeps the first (the customer was called back once)."""
    now = time.time() if now is None else now
    async with desk.engine.begin() as conn:
        status = await conn.scalar(sa.select(db.handoffs.c.status).where(db.handoffs.c.id == handoff_id))
        if status != "timed_out":
            return False
        done = await conn.scalar(
            sa.select(callbacks.c.handoff_id).where(callbacks.c.handoff_id == handoff_id)
        )
        if done is None:
            await conn.execute(
                callbacks.insert().values(
                    handoff_id=handoff_id, agent_id=agent.id, agent_name=agent.display_name, called_at=now
                )
            )
    return True


async def queue_context(request: web.Request) -> dict[str, Any]:
    return {"timed_out": await timed_out_today(request.app[DESK])}


@login_required()
async def callback(request: web.Request) -> web.StreamResponse:
    handoff_id = handoff_id_of(request)
    if not await mark_called_back(request.app[DESK], handoff_id, request["agent"]):
        raise web.HTTPNotFound()
    if wants_json(request):
        return web.json_response({"status": "called_back"})
    raise web.HTTPSeeOther("/#timed-out")


def _is_page(request: web.Request) -> bool:
    return not (is_api(request) or wants_json(request))


@web.middleware
async def error_pages(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Middleware: 403/404/405/413 as the desk's own Vietnamese page in the layout for browsers (no
    route, bad id, /demo switched off); a handler's own message (HTTPNotFound(text=...),
    forbidden(...)) is kept. JSON callers get JSON."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status not in PAGE_STATUSES:
            raise
        default = f"{exc.status}: {exc.reason}"
        # The desk's handlers word their 403/404 in Vietnamese; aiohttp's own texts are English.
        own = exc.status in {403, 404} and exc.text and exc.text != default
        message = exc.text if own and exc.text else MESSAGES[exc.status]
        if not _is_page(request):
            return web.json_response(
                {"error": exc.reason.lower().replace(" ", "_"), "message": message}, status=exc.status
            )
        return await _page(request, exc.status, message, default_message=message == MESSAGES[exc.status])
    if (
        response.status in PAGE_STATUSES
        and isinstance(response, web.Response)
        and response.content_type == "text/plain"
        and _is_page(request)
    ):
        return await _page(request, response.status, response.text or MESSAGES[response.status], False)
    return response


async def _page(request: web.Request, status: int, message: str, default_message: bool) -> web.StreamResponse:
    if aiohttp_jinja2.REQUEST_CONTEXT_KEY not in request:
        # Refused before aiohttp_jinja2's middleware ran (CSRF check, body too large): the layout
        # still needs the agent and the header's context.
        context: dict[str, Any] = {}
        for processor in request.config_dict[aiohttp_jinja2.APP_CONTEXT_PROCESSORS_KEY]:
            context.update(await processor(request))
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = context
    if status == 404 and default_message:
        return aiohttp_jinja2.render_template("not_found.html", request, {}, status=404)
    return aiohttp_jinja2.render_template("error.html", request, {"message": message}, status=status)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/timeouts/{id:[0-9]+}/callback", callback)
