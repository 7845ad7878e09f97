"""What every desk page handler needs from a request: ids from the URL, the form, where to go
after login, and a refusal answered as JSON or as the error page."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp_jinja2
from aiohttp import web

from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError


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


def bounded_id(raw: str) -> int:
    """A positive database id from the URL; anything else is a 404 (never an overflow in the DB)."""
    value = ascii_number(raw, 10)
    if value is None or not 0 < value < 2**31:
        raise web.HTTPNotFound()
    return value


def handoff_id_of(request: web.Request) -> int:
    return bounded_id(request.match_info["id"])


async def read_form(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise DeskError(TEXTS.get("bad_form"), 400) from None
        if not isinstance(data, dict):
            raise DeskError(TEXTS.get("bad_form"), 400)
        return {k: v for k, v in data.items() if isinstance(v, str)}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _unsafe_char(c: str) -> bool:
    return c == "\\" or c.isspace() or unicodedata.category(c) in {"Cc", "Cf"}


def safe_next(target: str | None) -> str:
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
