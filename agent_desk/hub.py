"""In-process publish/subscribe feeding the browsers' Server-Sent Events streams."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


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


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, conversation: str | None = None) -> Subscription:
        return Subscription(self, conversation)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, kind: str, data: Any, conversation: str | None = None) -> None:
        """Queue events go to everyone; conversation events only to that conversation's viewers."""
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
