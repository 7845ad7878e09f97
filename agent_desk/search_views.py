"""GET /search: the search box and its results (agents and supervisors)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agent_desk.handoffs import CLOSE_TAGS, Handoff
from agent_desk.keys import ENGINE
from agent_desk.search import PAGE_SIZE, earlier, search
from agent_desk.search_query import MAX_QUERY, TAG_KEYS, SearchError, parse, parse_page
from agent_desk.security import login_required
from common.chat_identity import CHAT_CHANNELS


def _context(text: str, **values: Any) -> dict[str, Any]:
    return {
        "q": text,
        "max_query": MAX_QUERY,
        "page_size": PAGE_SIZE,
        "tag_keys": TAG_KEYS,
        "close_tags": CLOSE_TAGS,
        "channels": sorted(CHAT_CHANNELS),
        "results": None,
        "error": None,
        **values,
    }


@login_required()
async def search_page(request: web.Request) -> web.StreamResponse:
    text = request.query.get("q", "")
    try:
        query = parse(text)
        page = parse_page(request.query.get("p"))
    except SearchError as exc:
        # The box shows what was typed, cut to its own limit.
        context = _context(text[:MAX_QUERY], error=exc)
        return aiohttp_jinja2.render_template("search.html", request, context, status=400)
    results = None if query.empty else await search(request.app[ENGINE], query, page)
    return aiohttp_jinja2.render_template("search.html", request, _context(text, results=results))


async def conversation_context(request: web.Request, handoff: Handoff) -> dict[str, Any]:
    """What the conversation page shows of the customer's earlier conversations."""
    hits, more = await earlier(
        request.app[ENGINE], handoff.id, handoff.sender_id, handoff.request_code, handoff.requested_at
    )
    return {"earlier": hits, "earlier_more": more}


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/search", search_page)
