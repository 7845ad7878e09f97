"""The route table: every handler module's routes, in the order the application adds them."""

from __future__ import annotations

from aiohttp import web

from ..counters import COUNTERS
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

HANDLER_MODULES = (
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
)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "signing-service"})


async def metrics(request: web.Request) -> web.Response:
    """Counters in Prometheus text format (behind the service token, like every /v1 path)."""
    return web.Response(text=COUNTERS.exposition(), content_type="text/plain")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/v1/metrics", metrics)
    for module in HANDLER_MODULES:
        app.router.add_routes(module.routes)
