"""Run webhook work after the acknowledgement, in order per conversation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from connectors.common.masking import mask_id

logger = logging.getLogger(__name__)


class SerialPerKey:
    """Background tasks that run one at a time per key (conversation) and concurrently across keys.

    Webhooks are acknowledged before the bot runs (Zalo allows ~2 s); without this, two quick
    messages of one customer could be answered out of order. Task references are kept so the
    event loop does not garbage-collect running work.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, key: str, work: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        previous = self._tails.get(key)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await work()
            except Exception:
                logger.exception("%s: processing a message from %s failed", self._name, mask_id(key))

        task = asyncio.get_running_loop().create_task(run())
        self._tails[key] = task
        self._running.add(task)
        task.add_done_callback(lambda t: self._forget(key, t))
        return task

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._tails.get(key) is task:
            del self._tails[key]

    @property
    def pending(self) -> int:
        return len(self._running)

    async def drain(self) -> None:
        """Wait until every submitted task has finished (tests, shutdown)."""
        while self._running:
            await asyncio.wait(list(self._running))
