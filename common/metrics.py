"""Prometheus metrics of every process: their names, the aiohttp middleware and the `/metrics` answer.

All metric families are declared here, so the dashboard and the alert rules (deploy/grafana,
deploy/prometheus) have one list to agree with (tests/test_metrics_deploy.py checks them). Labels
are bounded: service, route pattern, method, status, channel, outcome — never an id, a request
code, a phone number or a user.

Access: `/metrics` is served on each service's own port. With `METRICS_TOKEN` set it needs
`Authorization: Bearer <METRICS_TOKEN>` (Prometheus: `authorization:` in the scrape config); with
APP_ENV=production it must be set, or the process refuses to start. Nginx does not route /metrics.

Processes with several workers (Rasa, the action server under Sanic) set PROMETHEUS_MULTIPROC_DIR
to an empty directory shared by the workers; `/metrics` then adds up what every worker wrote there.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from common.production import is_production, refuse_development_defaults

TOKEN_ENV = "METRICS_TOKEN"  # noqa: S105 - the variable's name
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # requests no route answered: their raw path is the caller's text

# Bot replies take 0.1-3 s; HTTP calls 5 ms-5 s.
_REPLY_BUCKETS = (0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13, 20, 30)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_WAIT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

# ---- HTTP services (signing service, agent desk) ----
HTTP_LATENCY = Histogram(
    "cskh_http_request_duration_seconds",
    "Time to answer an HTTP request, by service and route pattern",
    ["service", "method", "route", "status"],
    buckets=_HTTP_BUCKETS,
)
DB_POOL_CHECKED_OUT = Gauge(
    "cskh_db_pool_checked_out",
    "Database connections in use (SQLAlchemy pool), by service",
    ["service"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "cskh_db_pool_size", "Configured database pool size, by service", ["service"], multiprocess_mode="livemax"
)

# ---- the bot (connectors inside Rasa; the action server) ----
TURNS = Counter("cskh_bot_turns_total", "Customer messages handed to the bot, by channel", ["channel"])
REPLY_LATENCY = Histogram(
    "cskh_bot_reply_seconds",
    "From a customer message to the end of the bot's reply, by channel",
    ["channel"],
    buckets=_REPLY_BUCKETS,
)
NLU_FALLBACKS = Counter(
    "cskh_nlu_fallbacks_total",
    "Messages the NLU was not sure about (action_nlu_fallback), by channel",
    ["channel"],
)
ACTION_CALLS = Counter(
    "cskh_action_calls_total", "Custom action calls answered by the action server, by status", ["status"]
)
CHANNEL_SEND_ERRORS = Counter(
    "cskh_channel_send_errors_total", "Bot replies a platform refused or failed, by channel", ["channel"]
)

# ---- agent desk ----
HANDOFFS_WAITING = Gauge(
    "cskh_handoffs_waiting", "Conversations waiting for an agent", multiprocess_mode="livesum"
)
HANDOFF_WAIT = Histogram(
    "cskh_handoff_wait_seconds",
    "How long a customer waited before an agent took the conversation",
    buckets=_WAIT_BUCKETS,
)

# ---- notifier ----
NOTIFICATIONS = Counter(
    "cskh_notifications_total",
    "Notifications handled, by channel and outcome (sent, failed)",
    ["channel", "outcome"],
)


class MetricsConfigError(ValueError):
    """METRICS_TOKEN missing in production; the message says what to set."""


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The bearer token /metrics requires (None: open, development only)."""
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip() or None
    if is_production(env):
        refuse_development_defaults(
            {TOKEN_ENV: token is None},
            MetricsConfigError,
            "APP_ENV=production: set {names} (Prometheus sends it as a bearer token to /metrics)",
        )
    return token


def token_ok(authorization: str | None, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def exposition() -> bytes:
    """This process's metrics, or every worker's when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


Refresh = Callable[[web.Application], Awaitable[None]]


def metrics_handler(
    token: str | None, refresh: Refresh | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """`GET /metrics` for an aiohttp app; `refresh` updates gauges read from a database first."""

    async def metrics(request: web.Request) -> web.Response:
        if not token_ok(request.headers.get("Authorization"), token):
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        if refresh is not None:
            await refresh(request.app)
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def route_label(request: web.Request, unmatched: str = UNMATCHED) -> str:
    """The route's pattern (`/v1/requests/{code}`), never the path a caller typed; `unmatched` when
    no route matched."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else unmatched


def http_middleware(service: str) -> Any:
    """aiohttp middleware timing every request into HTTP_LATENCY (put it first: it sees every answer)."""

    @web.middleware
    async def measure(request: web.Request, handler: Any) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"  # callers choose it
            HTTP_LATENCY.labels(service, method, route_label(request), str(status)).observe(
                time.perf_counter() - started
            )

    return measure


def _pool_number(pool: Callable[[], Any], method: str) -> float:
    try:
        read = getattr(pool(), method, None)
        return float(read()) if callable(read) else 0.0
    except Exception:  # the engine is not made yet, or already disposed: nothing in use
        return 0.0


@contextmanager
def bot_turn(channel: str) -> Iterator[None]:
    """Count one customer message of `channel` and time the bot's whole reply to it."""
    TURNS.labels(channel).inc()
    started = time.perf_counter()
    try:
        yield
    finally:
        REPLY_LATENCY.labels(channel).observe(time.perf_counter() - started)


def watch_pool(service: str, pool: Callable[[], Any]) -> None:
    """Report the SQLAlchemy pool `pool()` returns, read at scrape time (pools without a size, such as
    SQLite's NullPool, report 0)."""
    DB_POOL_CHECKED_OUT.labels(service).set_function(lambda: _pool_number(pool, "checkedout"))
    DB_POOL_SIZE.labels(service).set_function(lambda: _pool_number(pool, "size"))


class CallbackCounters(Collector):
    """Counters kept elsewhere (a dict of name -> (help, value)), exposed as Prometheus counters."""

    def __init__(self, read: Callable[[], Mapping[str, tuple[str, float]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[CounterMetricFamily]:
        for name, (help_text, value) in self._read().items():
            yield CounterMetricFamily(name.removesuffix("_total"), help_text, value=value)


_registered: dict[str, Collector] = {}


def register_once(key: str, collector: Collector) -> None:
    """Register a collector once per process (app factories run once per test as well)."""
    if key not in _registered:
        REGISTRY.register(collector)
        _registered[key] = collector
