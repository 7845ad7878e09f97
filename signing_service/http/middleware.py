"""The middlewares every call goes through: the access log line, JSON errors, the service token."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

from aiohttp import web
from sqlalchemy import exc as sa_exc

from common import metrics
from common.request_code import is_request_code

from ..errors import MESSAGES, ApiError
from .keys import CTX

log = logging.getLogger("signing_service.errors")
access_log = logging.getLogger("signing_service.access")

# The paths under /v1 that carry their own proof (an HMAC-signed, expiring link) instead of the token.
_LINK_PATH = re.compile(r"^/v1/(documents/[^/]+/file|signing-sessions/[^/]+/certificate/file)$")
# Path parameters worth logging as typed: request codes and short numeric ids. Anything else a
# caller put in the path (names, phone numbers, hostile text) is replaced, so it never reaches logs.
_LOGGABLE_PARAM = re.compile(r"^[0-9]{1,9}$")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "invalid_field"}


def code_tag(secret: str, code: str) -> str:
    """A request code as logs show it: a keyed hash, the same for the same code (to follow one
    customer's calls), useless to anyone without the service secret."""
    return (
        "req:" + hmac.new(secret.encode(), b"log|" + code.upper().encode(), hashlib.sha256).hexdigest()[:10]
    )


def error_response(status: int, code: str, message: str | None = None, **extra: Any) -> web.Response:
    body = {"error": code, "message": message or MESSAGES.get(code, code), **extra}
    headers = {"Retry-After": str(extra["retry_after"])} if "retry_after" in extra else None
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def _route(request: web.Request) -> str:
    """The route pattern ("/v1/requests/{code}/advance"), never the path: it holds request codes."""
    return metrics.route_label(request, f"<unrouted {len(request.path)} chars>")


def _loggable_path(request: web.Request) -> str:
    """The route pattern with its parameters filled only where they are safe to log."""
    resource = request.match_info.route.resource
    if resource is None:  # no route matched: the raw path is the caller's text, not ours
        return f"<unrouted {len(request.path)} chars>"
    path = resource.canonical
    for name, value in request.match_info.items():
        if name == "id" and not (value.isascii() and value.isdigit()):  # a signing session id
            shown = value[:6] + "…"  # enough to correlate, not enough to use
        elif value.isascii() and is_request_code(value.upper()):
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
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """JSON errors with stable codes, never a raw 500."""
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e.status, e.code, e.message, **e.extra)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(e.status, _HTTP_CODES.get(e.status, "invalid_field"))
    except (ConnectionError, asyncio.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError) as e:
        # The database is unreachable (restart, failover, network): a temporary condition, so 503,
        # which also lets the reverse proxy try another replica. Transactions were rolled back.
        log.error("database unavailable on %s %s: %s", request.method, _route(request), type(e).__name__)
        return error_response(503, "database_unavailable", retry_after=5)
    except Exception:
        # Operators get the traceback in the log; the caller gets no internals.
        log.exception("unexpected error on %s %s", request.method, _route(request))
        return error_response(500, "internal_error")


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v1/") and not _LINK_PATH.match(request.path):
        expected = request.app[CTX].settings.token
        given = request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return error_response(401, "unauthorized")
    return await handler(request)
