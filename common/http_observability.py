"""Wire an aiohttp service for operators: request ids on every call and `GET /metrics`.

One call from each app factory (signing service, agent desk), so both do the same thing the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client.registry import Collector

from common import metrics, request_id


def observe(
    app: web.Application,
    service: str,
    pool: Callable[[], Any] | None = None,
    collector: Collector | None = None,
    refresh: metrics.Refresh | None = None,
) -> None:
    """Add the request-id and latency middlewares (outermost) and the /metrics route.

    `pool` returns the SQLAlchemy pool to report (read at scrape time: the engine may not exist
    yet); `collector` adds the service's own counters; `refresh` runs before each scrape (gauges
    read from a database). Raises MetricsConfigError (METRICS_TOKEN).
    """
    token = metrics.token_from_env()
    # Outermost first: every log line of the call, the access line included, carries the id.
    app.middlewares.insert(0, metrics.http_middleware(service))
    app.middlewares.insert(0, request_id.aiohttp_middleware)
    app.router.add_get(metrics.PATH, metrics.metrics_handler(token, refresh))
    if pool is not None:
        metrics.watch_pool(service, pool)
    if collector is not None:
        metrics.register_once(f"{service}-counters", collector)
