"""aiohttp application: middlewares, routes, start-up (schema, demo data, keys) and shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from aiohttp import web

from . import (
    api_amendments,
    api_check,
    api_documents,
    api_notifications,
    api_pki,
    api_requests,
    api_signing,
    api_staff,
    api_staff_sms,
    api_verification,
)
from .clock import Clock, SystemClock
from .context import CTX, Context
from .counters import COUNTERS
from .db import Database
from .demo_data import ANCHOR_KEY, load_demo_data
from .demo_signing import seal_demo_documents
from .errors import error_middleware, error_response
from .fonts import ensure_fonts
from .models import Meta
from .outbox import FileOutbox
from .pades import Sealer
from .rate_limit import CODE_LOOKUPS, NAME_LOOKUPS, CodeLookupLimiter, NameLookupLimiter
from .settings import Settings

log = logging.getLogger(__name__)

# The paths under /v1 that carry their own proof (an HMAC-signed, expiring link) instead of the token.
_LINK_PATH = re.compile(r"^/v1/(documents/[^/]+/file|signing-sessions/[^/]+/certificate/file)$")


access_log = logging.getLogger("signing_service.access")
# Path parameters worth logging as typed: request codes and short numeric ids. Anything else a
# caller put in the path (names, phone numbers, hostile text) is replaced, so it never reaches logs.
_LOGGABLE_PARAM = re.compile(r"^[0-9]{1,9}$")
_REQUEST_CODE = re.compile(r"^PC[0-9]{2}[A-Z]{2}[0-9]{7}$", re.IGNORECASE)


def code_tag(secret: str, code: str) -> str:
    """A request code as logs show it: a keyed hash, the same for the same code (to follow one
    customer's calls), useless to anyone without the service secret."""
    return (
        "req:" + hmac.new(secret.encode(), b"log|" + code.upper().encode(), hashlib.sha256).hexdigest()[:10]
    )


def _loggable_path(request: web.Request) -> str:
    """The route pattern with its parameters filled only where they are safe to log."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: the raw path is the caller's text, not ours
        return f"<unrouted {len(request.path)} chars>"
    path = resource.canonical
    for name, value in request.match_info.items():
        if name == "id" and not (value.isascii() and value.isdigit()):  # a signing session id
            shown = value[:6] + "…"  # enough to correlate, not enough to use
        elif _REQUEST_CODE.match(value):
            shown = code_tag(request.app[CTX].settings.secret_key, value)
        else:
            shown = value if _LOGGABLE_PARAM.match(value) else "…"
        path = path.replace("{" + name + "}", shown)
    return path


@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """One line per call, without query strings (link signatures) and with session ids shortened."""
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        elapsed_ms = (time.monotonic() - started) * 1000
        access_log.info("%s %s %d %.0fms", request.method, _loggable_path(request), status, elapsed_ms)


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v1/") and not _LINK_PATH.match(request.path):
        expected = request.app[CTX].settings.token
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return error_response(401, "unauthorized")
    return await handler(request)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "signing-service"})


async def metrics(request: web.Request) -> web.Response:
    """Counters in Prometheus text format (behind the service token, like every /v1 path)."""
    return web.Response(text=COUNTERS.exposition(), content_type="text/plain")


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    app = web.Application(
        middlewares=[access_middleware, error_middleware, auth_middleware], client_max_size=64 * 1024
    )
    app[CTX] = Context(settings=settings, db=Database(settings.database_url), clock=clock or SystemClock())
    app[NAME_LOOKUPS] = NameLookupLimiter(
        settings.secret_key,
        settings.name_lookups_per_conversation,
        settings.name_lookup_conversation_window_s,
        settings.name_lookups_per_unit,
        settings.name_lookup_unit_window_s,
    )
    app[CODE_LOOKUPS] = CodeLookupLimiter(
        settings.secret_key,
        settings.code_lookups_per_conversation,
        settings.code_lookup_misses_per_conversation,
        settings.code_lookup_window_s,
    )
    app.router.add_get("/health", health)
    app.router.add_get("/v1/metrics", metrics)
    for module in (
        api_requests,
        api_documents,
        api_amendments,
        api_signing,
        api_verification,
        api_staff,
        api_staff_sms,
        api_notifications,
        api_check,
        api_pki,
    ):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(_lifespan)
    return app


async def _startup(app: web.Application) -> None:
    c = app[CTX]
    c.settings.var_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    # Key generation and font subsetting happen once per var dir; later starts just load them.
    c.fonts = await loop.run_in_executor(None, ensure_fonts, c.settings.var_dir)
    c.sealer = await loop.run_in_executor(None, Sealer.from_settings, c.settings)
    if c.outbox is None:
        c.outbox = FileOutbox(c.settings.outbox_path)
    async with c.db.init_lock():
        await c.db.create_schema()
        if c.settings.demo_data:
            await load_demo_data(c.db, c.clock.now())
            await seal_demo_documents(c)
    async with c.db.read() as s:
        anchor = await s.get(Meta, ANCHOR_KEY)
    c.anchor = date.fromisoformat(anchor.value) if anchor else None
    log.info(
        "signing service ready: env=%s database=%s var=%s outbox=%s links=%s (ttl %ss)",
        c.settings.app_env,
        c.db.engine.url.render_as_string(hide_password=True),
        c.settings.var_dir,
        c.settings.outbox_path,
        c.settings.public_base_url,
        c.settings.link_ttl_seconds,
    )


async def _lifespan(app: web.Application) -> AsyncIterator[None]:
    await _startup(app)
    try:
        yield
    finally:
        await app[CTX].db.close()
