"""aiohttp application: middlewares, routes, start-up (schema, demo data, keys) and shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import date

from aiohttp import web

from common.http_observability import observe
from common.metrics import CallbackCounters

from ..clock import Clock, SystemClock
from ..context import Context
from ..counters import COUNTERS, NAMES
from ..db import Database
from ..demo.data import load_demo_data
from ..demo.signing import seal_demo_documents
from ..fonts import ensure_fonts
from ..models import ANCHOR_KEY, Meta
from ..outbox import FileOutbox
from ..pades import Sealer
from ..rate_limit import CodeLookupLimiter, NameLookupLimiter
from ..settings import Settings
from .keys import CODE_LOOKUPS, CTX, NAME_LOOKUPS
from .middleware import access_middleware, auth_middleware, error_middleware
from .routes import add_routes

# The service's own counters (signing_service/counters.py) on /metrics too, under their cskh_ names.
COUNTERS_COLLECTOR = CallbackCounters(lambda: {f"cskh_{n}": (h, COUNTERS.get(n)) for n, h in NAMES.items()})

log = logging.getLogger("signing_service.app")


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
    add_routes(app)
    # Request ids, route latency, GET /metrics (with the OTP and lookup counters, and the pool).
    observe(app, "signing", lambda: app[CTX].db.engine.sync_engine.pool, COUNTERS_COLLECTOR)
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
