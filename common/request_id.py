"""One id per customer message, carried from the channel webhook through Rasa, the action server and
the signing service, so an operator can follow that message across the processes' logs.

The id travels as the `X-Request-Id` header between our HTTP services and as `request_id` in the
Rasa message metadata (the tracker's latest message carries it to the action server). Inside a
process it lives in a contextvar: asyncio tasks copy it, so background work started for a message
keeps its id. An incoming id is accepted only when short and plain (it ends up in log lines);
anything else is replaced by a fresh one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from aiohttp import web

HEADER = "X-Request-Id"
METADATA_KEY = "request_id"  # in Rasa's UserMessage metadata
NONE = "-"  # what log lines show outside any request

# Letters, digits and a few separators, at most 64: enough for UUIDs and proxies' ids, nothing that
# could forge a log line or carry personal data of any length.
_SAFE = re.compile(r"[A-Za-z0-9._:-]{8,64}")  # fullmatch: `$` would let a trailing newline in

_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def new_id() -> str:
    return secrets.token_hex(8)


def safe(candidate: object) -> str | None:
    """The candidate when it is an acceptable id, else None."""
    return candidate if isinstance(candidate, str) and _SAFE.fullmatch(candidate) else None


def accept(candidate: object) -> str:
    """The caller's id when safe, else a new one."""
    return safe(candidate) or new_id()


def current() -> str | None:
    return _current.get()


def bind(request_id: str) -> Token[str | None]:
    """Make `request_id` the current id (for this task and the tasks it starts)."""
    return _current.set(request_id)


def unbind(token: Token[str | None]) -> None:
    _current.reset(token)


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    """`bind` for the length of a `with` block."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def headers() -> dict[str, str]:
    """The header to send on an outgoing call: the current id, or nothing outside a request."""
    rid = _current.get()
    return {HEADER: rid} if rid else {}


def from_metadata(metadata: Mapping[str, Any] | None) -> str | None:
    """The safe id a channel put in a Rasa message's metadata, if any."""
    return safe(metadata.get(METADATA_KEY)) if isinstance(metadata, Mapping) else None


def from_tracker(tracker_json: Mapping[str, Any] | None) -> str | None:
    """The id in the latest user message of a tracker as Rasa sends it to the action server."""
    if not isinstance(tracker_json, Mapping):
        return None
    latest = tracker_json.get("latest_message")
    return from_metadata(latest.get("metadata")) if isinstance(latest, Mapping) else None


@web.middleware
async def aiohttp_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bind the caller's `X-Request-Id` (or a new id) for the request, and answer with it."""
    rid = accept(request.headers.get(HEADER))
    token = bind(rid)
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # raised answers (404, 405, redirects) carry it too
            exc.headers[HEADER] = rid
            raise
        response.headers[HEADER] = rid
        return response
    finally:
        unbind(token)
