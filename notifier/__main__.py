"""`python -m notifier --port 8810`: send notification events to subscribed customers.

Reads the signing service's database (DATABASE_URL, the same settings) and the channel settings
(TELEGRAM_*, ZALO_*, ZNS_*); answers `GET /health` with its counters. Several replicas may run on
PostgreSQL: they share the work with `FOR UPDATE SKIP LOCKED`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import date

import aiohttp
from aiohttp import web
from sqlalchemy import select

from common import log_setup, metrics
from common.http_observability import observe
from common.rasa_client import RasaClient
from connectors.common.ratelimit import RateLimiter
from connectors.common.settings import ConfigError as ChannelConfigError
from connectors.telegram.config import TelegramSettings, make_bot
from connectors.zalo.api import ZaloApi
from connectors.zalo.config import ZaloSettings
from connectors.zalo.zns import ZnsApi
from signing_service.clock import SystemClock
from signing_service.context import Context
from signing_service.db import Database
from signing_service.models import ANCHOR_KEY, Meta
from signing_service.outbox import FileOutbox
from signing_service.settings import ConfigError, Settings, load_settings

from .channels import Router
from .messages import Messages
from .settings import NotifierSettings
from .worker import Worker

log = logging.getLogger("notifier")


async def load_anchor(c: Context) -> None:
    async with c.db.read() as s:
        row = (await s.execute(select(Meta).where(Meta.key == ANCHOR_KEY))).scalar_one_or_none()
    c.anchor = date.fromisoformat(row.value) if row else None


async def serve(settings: Settings, ns: NotifierSettings, host: str, port: int) -> None:
    c = Context(settings=settings, db=Database(settings.database_url), clock=SystemClock())
    c.outbox = FileOutbox(settings.outbox_path)
    async with c.db.init_lock():
        await c.db.create_schema()
    await load_anchor(c)
    tg = TelegramSettings.from_env()
    zs = ZaloSettings.from_env()
    telegram = make_bot(tg) if tg else None
    limiter = RateLimiter(tg.send_rate, tg.send_rate, tg.chat_rate, tg.chat_burst) if tg else None
    zalo = ZaloApi(zs) if zs else None
    zns = ZnsApi(ns.zns_base_url, zalo) if zalo and ns.zns_templates else None
    http = aiohttp.ClientSession()
    rasa = RasaClient(http, ns.rasa_url, ns.rasa_token, timeout=5) if ns.rasa_url else None
    router = Router(
        Messages.from_domain(),
        c.outbox,
        telegram=telegram,
        zalo=zalo,
        zns=zns,
        zns_templates=ns.zns_templates,
        rasa=rasa,
        zalo_window_s=ns.zalo_window_hours * 3600,
        record_in_conversation=ns.record_in_conversation,
        telegram_limiter=limiter,
    )
    worker = Worker(c, router, ns)

    async def health(_: web.Request) -> web.Response:
        k = worker.counters
        return web.json_response(
            {"status": "ok", "sent": k.sent, "retried": k.retried, "failed": k.failed, "by_via": k.by_via}
        )

    app = web.Application()
    app.router.add_get("/health", health)
    observe(app, "notifier", lambda: c.db.engine.sync_engine.pool)  # GET /metrics, request ids
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stopping.set)
    log.info(
        "notifier ready on %s:%d: telegram=%s zalo=%s zns=%s quiet=%s cap=%d/day",
        host,
        port,
        bool(telegram),
        bool(zalo),
        sorted(ns.zns_templates),
        settings.quiet_hours,
        settings.notify_daily_cap,
    )
    try:
        if telegram is not None:
            await telegram.initialize()
        await worker.run()
    finally:
        log.info("notifier stopping: sent %d, failed %d", worker.counters.sent, worker.counters.failed)
        await runner.cleanup()
        if telegram is not None:
            await telegram.shutdown()
        if zalo is not None:
            await zalo.close()
        await http.close()
        await c.db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notifier", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8810)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    try:
        log_setup.configure(args.log_level)  # LOG_FORMAT=text|json, request ids
    except log_setup.LogConfigError as e:
        print(f"notifier: configuration error: {e}", file=sys.stderr)
        return 2
    # PTB and httpx log each request URL at INFO, and a Telegram URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        ns = NotifierSettings.from_env()
        TelegramSettings.from_env()
        ZaloSettings.from_env()
        Messages.from_domain()
        metrics.token_from_env()  # METRICS_TOKEN: required in production
    except (ConfigError, ChannelConfigError, ValueError) as e:
        print(f"notifier: configuration error: {e}", file=sys.stderr)
        return 2
    asyncio.run(serve(settings, ns, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
