"""GET /training: the inbox of poorly understood messages (groups, per-day counts, filters, pages);
POST /training/groups/{id}/dismiss and /reopen."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agent_desk.keys import ENGINE, SETTINGS
from agent_desk.training import inbox, nlu_edit
from agent_desk.training.texts import TEXTS
from agent_desk.training.web import (
    BadInput,
    choice_param,
    error_page,
    int_param,
    workbench_required,
)
from trainer.review import ReviewError

log = logging.getLogger(__name__)
PAGE_SIZE = 25
COLLECT_TIMEOUT_S = 20.0


def events_source(request: web.Request) -> str:
    return str(request.app[SETTINGS].rasa_events_db)


async def refresh(request: web.Request) -> str | None:
    """Collect what Rasa wrote since the last visit; a Vietnamese note if the events cannot be read."""
    settings = request.app[SETTINGS]
    if inbox.collecting():  # another page load is reading: show what is stored, do not queue up
        return TEXTS.get("inbox_updating")
    try:
        trainer_settings = nlu_edit.load_settings(settings.training.project_dir)
        # Shielded: a slow read goes on in the background (the page does not wait past the timeout,
        # and the next page load skips instead of starting a second read).
        task = asyncio.ensure_future(
            inbox.collect(request.app[ENGINE], events_source(request), trainer_settings)
        )
        await asyncio.wait_for(asyncio.shield(task), COLLECT_TIMEOUT_S)
    except asyncio.TimeoutError:
        return TEXTS.get("inbox_updating")
    except (ReviewError, nlu_edit.EditRefused) as exc:
        log.warning("training inbox: events not collected (%s)", exc.__class__.__name__)
        return TEXTS.get("inbox_unreadable")
    return None


@workbench_required
async def inbox_page(request: web.Request) -> web.StreamResponse:
    try:
        reason = choice_param(request.query, "reason", inbox.REASONS, TEXTS.get("field_reason"))
        status = choice_param(request.query, "status", inbox.STATUSES, TEXTS.get("field_status"))
        page_no = int_param(request.query, "page", 1, 1, 1000, TEXTS.get("field_page"))
    except BadInput as exc:
        return error_page(request, str(exc))
    status = status if "status" in request.query else "new"
    note = await refresh(request)
    engine = request.app[ENGINE]
    groups, total = await inbox.page(engine, reason, status, page_no, PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    context: dict[str, Any] = {
        "groups": groups,
        "total": total,
        "page": page_no,
        "pages": pages,
        "reason": reason,
        "status": status,
        "reasons": inbox.REASON_LABELS,
        "statuses": inbox.STATUS_LABELS,
        "days": await inbox.per_day(engine),
        "note": note,
        "saved": "".join(c for c in request.query.get("saved", "")[:10] if c in "0123456789abcdef"),
    }
    return aiohttp_jinja2.render_template("training/inbox.html", request, context)


def group_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if len(raw) > 9 or not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 2**31:
        raise web.HTTPNotFound()
    return int(raw)


@workbench_required
async def dismiss(request: web.Request) -> web.StreamResponse:
    if not await inbox.set_status(
        request.app[ENGINE], group_id(request), "dismissed", request["agent"].username
    ):
        raise web.HTTPNotFound(text=TEXTS.get("group_not_found"))
    raise web.HTTPSeeOther("/training")


@workbench_required
async def reopen(request: web.Request) -> web.StreamResponse:
    if not await inbox.set_status(request.app[ENGINE], group_id(request), "new", request["agent"].username):
        raise web.HTTPNotFound(text=TEXTS.get("group_not_found"))
    raise web.HTTPSeeOther("/training?status=dismissed")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/training", inbox_page)
    app.router.add_post(r"/training/groups/{id:[0-9]+}/dismiss", dismiss)
    app.router.add_post(r"/training/groups/{id:[0-9]+}/reopen", reopen)
