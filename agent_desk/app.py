"""Build the desk's aiohttp application and its background tasks (event consumer, sweeper)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
import sqlalchemy as sa
from aiohttp import web

from agent_desk import accounts, assignment, bot_failures, broker, channel_window, db, search_schema
from agent_desk.config import Settings
from agent_desk.customer_index import CustomerIndexer
from agent_desk.desk import Desk
from agent_desk.filters import FILTERS
from agent_desk.hub import Hub
from agent_desk.keys import DESK, ENGINE, SETTINGS
from agent_desk.peers import Peers
from agent_desk.responses import DomainResponses
from agent_desk.security import (
    LoginThrottle,
    csrf_middleware,
    csrf_token,
    security_headers_middleware,
    session_middleware,
)
from agent_desk.signing_client import SigningClient
from common.rasa_client import RasaClient

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
THROTTLE = web.AppKey("throttle", LoginThrottle)
SOURCE = web.AppKey("source", broker.EventSource)  # type: ignore[type-abstract]
TASKS = web.AppKey("tasks", list)
BACKGROUND = web.AppKey("background", bool)
STOP = web.AppKey("stop", asyncio.Event)
FAILURES = web.AppKey("bot_failures", bot_failures.FailureSource)  # messages the bot failed on

DEFAULT_CANNED = [
    ("Chào hỏi", "Dạ, em chào anh/chị. Em có thể hỗ trợ gì cho anh/chị ạ?"),
    ("Xin chờ", "Anh/chị vui lòng chờ em một chút để em kiểm tra thông tin ạ."),
    ("Xin mã yêu cầu", "Anh/chị vui lòng cho em xin mã yêu cầu (ví dụ PC05TK0000123) để em tra cứu ạ."),
    ("Hotline", "Anh/chị có thể gọi tổng đài 19001909 (miễn phí) để được hỗ trợ 24/7 ạ."),
    ("Kết thúc", "Cảm ơn anh/chị đã liên hệ. Chúc anh/chị một ngày tốt lành ạ."),
]


async def _seed_canned(app: web.Application) -> None:
    engine = app[ENGINE]
    async with engine.begin() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(db.canned))
        if not count:
            now = time.time()
            await conn.execute(
                db.canned.insert(), [{"title": t, "text": x, "updated_at": now} for t, x in DEFAULT_CANNED]
            )


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
            # Before the sweep requeues their idle conversations: those agents stop being offered more.
            await assignment.mark_idle_agents_away(app[DESK])
            await app[DESK].sweep()
            await assignment.assign_waiting(app[DESK])  # DESK_AUTO_ASSIGN=1 only
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
    await _seed_canned(app)
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


def create_app(settings: Settings, background: bool = True) -> web.Application:
    from agent_desk import assignment_views, views

    app = web.Application(
        # not_found_page twice: inside, the handlers' 403/404/405; outside the CSRF check, its 403 and
        # a body too large (413, read by that check) also get the desk's own page (agent_desk/ux.py).
        middlewares=[
            security_headers_middleware,
            session_middleware,
            views.not_found_page,
            csrf_middleware,
            views.not_found_page,
        ],
        client_max_size=64 * 1024,  # forms and chat messages are small
    )
    app[SETTINGS] = settings
    app[THROTTLE] = LoginThrottle()
    app[BACKGROUND] = background
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        context_processors=[_context, assignment_views.header_context],
    )
    env.filters.update(FILTERS)
    app.cleanup_ctx.append(_lifecycle)
    views.setup_routes(app)
    from agent_desk import report_views  # supervisors' reports (/reports, /reports.csv)

    report_views.setup_routes(app)
    channel_window.setup_routes(app)  # "Gửi SMS" after Zalo's window
    from agent_desk import attachments  # files agents send (issue 18)

    attachments.setup_routes(app)
    from agent_desk.training import runs_views  # trainers: training, report, activation (issue 19)

    runs_views.setup_routes(app)  # its runner starts and stops with the app (cleanup_ctx)
    from agent_desk.training import examples_views, inbox_views, labelling  # trainers' workbench (issue 19)

    inbox_views.setup_routes(app)
    labelling.setup_routes(app)
    examples_views.setup_routes(app)
    from agent_desk import customer_file_views  # customers' images and files, for staff

    customer_file_views.setup_routes(app)
    from agent_desk import service_api  # for the action server: a customer's place in the queue

    service_api.setup_routes(app)
    app.router.add_static("/static", HERE / "static", name="static", append_version=True)
    return app


async def _context(request: web.Request) -> dict[str, object]:
    return {
        "agent": request.get("agent"),
        "csrf_token": csrf_token(request) if "csrf_seed" in request else "",
        "demo_enabled": request.app[SETTINGS].demo_enabled,
    }
