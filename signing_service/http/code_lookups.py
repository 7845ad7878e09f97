"""Code lookups charged per conversation (docs/security.md §4): every chat call that names a request
code the customer typed goes through here, so that no route answers "this code exists" (or its
masked contacts) more often than the status lookup does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from common.chat_identity import CONVERSATION_HEADER, MAX_CONVERSATION_ID

from ..errors import ApiError
from .keys import CODE_LOOKUPS, ctx


def conversation_of(request: web.Request) -> str | None:
    """The bot's conversation (Rasa sender) id: lookups are limited per conversation."""
    return request.headers.get(CONVERSATION_HEADER, "").strip()[:MAX_CONVERSATION_ID] or None


@contextmanager
def charged_code_lookup(request: web.Request) -> Iterator[None]:
    """Count one code lookup for the caller's conversation (429 `too_many_lookups` over the limit),
    and a miss when the block answers 404: a sweep of random codes misses almost always."""
    conversation = conversation_of(request)
    if conversation is None:  # staff and internal calls carry no conversation
        yield
        return
    limiter, now = request.app[CODE_LOOKUPS], ctx(request).clock.now()
    limiter.check(conversation, now)
    try:
        yield
    except ApiError as err:
        if err.status == 404:
            limiter.missed(conversation, now)
        raise
