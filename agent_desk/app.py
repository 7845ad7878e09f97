"""Build the desk's aiohttp application and its background tasks (event consumer, sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
import sqlalchemy as sa
from aiohttp import web

from agent_desk import (
    accounts,
    assignment,
    assignment_views,
    bot_failures,
    broker,
    canned_replies,
    db,
    routes,
    search_schema,
    ux,
)
from agent_desk.config import Settings
from agent_desk.customer_index import CustomerIndexer
from agent_desk.desk import Desk
from agent_desk.filters import FILTERS
from agent_desk.hub import Hub
from agent_desk.keys import BACKGROUND, DESK, ENGINE, SETTINGS, STOP
from agent_desk.peers import Peers
from agent_desk.responses import DomainResponses
from agent_desk.security import (
    THROTTLE,
    LoginThrottle,
    csrf_middleware,
    csrf_token,
    security_headers_middleware,
    session_middleware,
)
from agent_desk.signing_client import SigningClient
from common.http_observability import observe
from common.metrics import HANDOFFS_WAITING
from common.rasa_client import RasaClient

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SOURCE = web.AppKey("source", broker.EventSource)  # type: ignore[type-abstract]
TASKS = web.AppKey("tasks", list)
FAILURES = web.AppKey("bot_failures", bot_failures.FailureSource)  # messages the bot failed on

CANNED_SEED = web.AppKey("canned_seed", list)  # texts/canned_seed.yml, read and checked at creation


async def _follow_events(app: web.Application) -> None:
    """Consume the broker for the life of the app; reconnect with backoff if it fails."""
    source = app[SOURCE]
    delay = 1.0
    while not app[STOP].is_set():
        try:
            await source.run(app[DESK].ingest)
            delay = 1.0
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event source %s failed; retrying in %.0f s", source.name, delay)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(app[STOP].wait(), delay)
        delay = min(delay * 2, 30)


async def _sweep(app: web.Application) -> None:
    settings = app[SETTINGS]
    stop = app[STOP]
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.sweep_interval)
            return
        try:
            await assignment.sweep_pass(app[DESK])
            await app[DESK].load_open()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweep failed")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = db.make_engine(settings.database_url)
    await db.create_schema(engine)
    await search_schema.ensure_name_index(engine)
    app[ENGINE] = engine
    await canned_replies.seed_if_empty(engine, app[CANNED_SEED])
    session = aiohttp.ClientSession()
    responses = DomainResponses(settings.domain_path)
    missing = responses.missing()
    if missing:
        log.warning(
            "domain %s lacks handoff responses %s: take-over is refused until they exist",
            settings.domain_path,
            ", ".join(missing),
        )
    desk = Desk(
        settings,
        engine,
        RasaClient(session, settings.rasa_url, settings.rasa_token),
        SigningClient(session, settings.signing_url, settings.signing_token),
        responses,
        Hub(),
    )
    desk.peers = Peers.for_database(settings.database_url, engine)
    if desk.peers is not None:  # transfer notices and presence reach every desk's browsers
        desk.hub.forward = desk.peers.forward
        desk.peers.on_broadcast = lambda kind, data: desk.hub.publish(kind, data, forwarded=True)
    await desk.load_open()
    app[DESK] = desk
    if not await accounts.list_all(engine):
        log.warning("no desk accounts yet: create one with `make desk-user NAME=... ROLE=agent|supervisor`")
    app[SOURCE] = broker.make_source(settings, engine)
    tasks: list[asyncio.Task[None]] = []
    app[STOP] = asyncio.Event()
    if app[BACKGROUND]:
        tasks = [asyncio.create_task(_follow_events(app)), asyncio.create_task(_sweep(app))]
        if desk.peers is not None:  # several desk processes: queue changes made by the others
            tasks.append(asyncio.create_task(desk.peers.run(desk.reload_from_peers, app[STOP])))
        # Search: the masked customer of each request code, read from the signing service.
        indexer = CustomerIndexer(engine, desk.signing, settings.sweep_interval)
        tasks.append(asyncio.create_task(indexer.run(app[STOP])))
    app[FAILURES] = bot_failures.FailureSource(
        settings.bot_failures_url, engine, settings.bot_failures_poll_interval
    )
    if app[BACKGROUND]:
        tasks.append(asyncio.create_task(app[FAILURES].run(desk, app[STOP])))
    app[TASKS] = tasks
    try:
        yield
    finally:
        # Let the background tasks finish what they are doing (a database write cut in the middle
        # leaves a connection behind), then cancel whatever still waits.
        app[STOP].set()
        app[SOURCE].stop()
        if tasks:
            await asyncio.wait(tasks, timeout=3)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app[FAILURES].close()
        await session.close()
        await engine.dispose()


async def _close_streams(app: web.Application) -> None:
    """Before aiohttp waits for running handlers (up to 60 s): end the browsers' event streams, which
    would otherwise hold every stop of the desk, a restart of each desk process included."""
    if DESK in app:
        app[DESK].hub.close_all()


def create_app(settings: Settings, background: bool = True) -> web.Application:
    app = web.Application(
        # error_pages twice: inside, the handlers' 403/404/405; outside the CSRF check, its 403 and
        # a body too large (413, read by that check) also get the desk's own page (agent_desk/ux.py).
        middlewares=[
            security_headers_middleware,
            session_middleware,
            ux.error_pages,
            csrf_middleware,
            ux.error_pages,
        ],
        client_max_size=64 * 1024,  # forms and chat messages are small
    )
    app[SETTINGS] = settings
    app[THROTTLE] = LoginThrottle()
    app[BACKGROUND] = background
    app[CANNED_SEED] = canned_replies.load_seed()
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        context_processors=[_context, assignment_views.header_context],
    )
    env.filters.update(FILTERS)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_streams)
    routes.setup_routes(app)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    # Request ids, route latency, GET /metrics with the queue's length and the database pool.
    observe(app, "desk", lambda: app[ENGINE].sync_engine.pool, refresh=_queue_gauges)
    return app


async def _queue_gauges(app: web.Application) -> None:
    """Conversations waiting for an agent, counted in the database (all desk processes share it)."""
    async with app[ENGINE].connect() as conn:
        waiting = await conn.scalar(
            sa.select(sa.func.count()).select_from(db.handoffs).where(db.handoffs.c.status == "waiting")
        )
    HANDOFFS_WAITING.set(waiting or 0)


async def _context(request: web.Request) -> dict[str, object]:
    return {
        "agent": request.get("agent"),
        "csrf_token": csrf_token(request) if "csrf_seed" in request else "",
        "demo_enabled": request.app[SETTINGS].demo_enabled,
    }
