"""In-process publish/subscribe feeding the browsers' Server-Sent Events streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


CLOSED = ("closed", None)  # wakes a stream's reader; never sent to a browser


class Subscription:
    def __init__(self, hub: Hub, conversation: str | None, maxsize: int = 200) -> None:
        self.hub = hub
        self.conversation = conversation
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize)
        self.closed = False

    def __enter__(self) -> Subscription:
        self.hub._subs.add(self)
        return self

    def __exit__(self, *_: object) -> None:
        self.hub._subs.discard(self)


# Broadcasts (no conversation) that concern agents on every desk process: passed on to the others
# by agent_desk/peers.py when several share one PostgreSQL database.
SHARED_KINDS = frozenset({"assigned", "presence"})


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.forward: Callable[[str, Any], None] | None = None  # to the other desk processes

    def subscribe(self, conversation: str | None = None) -> Subscription:
        return Subscription(self, conversation)

    def close_all(self) -> None:
        """End every stream now (the desk is stopping): each wakes up, sees it is closed and returns,
        so the server's graceful shutdown does not wait out its timeout for them. Browsers reconnect."""
        for sub in list(self._subs):
            sub.closed = True
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(CLOSED)
        self._subs.clear()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, kind: str, data: Any, conversation: str | None = None, forwarded: bool = False) -> None:
        """Queue events go to everyone; conversation events only to that conversation's viewers."""
        if self.forward is not None and not forwarded and conversation is None and kind in SHARED_KINDS:
            self.forward(kind, data)
        for sub in list(self._subs):
            if conversation is not None and sub.conversation != conversation:
                continue
            try:
                sub.queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                # A stalled browser must not hold memory: drop it; its EventSource reconnects.
                log.info("dropping a slow SSE subscriber")
                self._subs.discard(sub)
                sub.closed = True
