"""Customers chatting in the background while a fault test breaks something, and what they kept."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp


async def post_turn(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> int:
    """One REST turn: the HTTP status, or 0 when the connection failed (reset by a dying process)."""
    try:
        async with session.post(url, json={"sender": sender, "message": text}) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return 0


@dataclass
class BackgroundCustomers:
    """`n` customers each sending numbered greetings in a loop until stopped, `think` seconds apart
    (10 customers still keep requests in flight on every worker; without a pause they saturated
    both cores for the whole test, most of a fault test's CPU)."""

    url: str
    prefix: str
    think: float = 0.1
    acked: dict[str, list[str]] = field(default_factory=dict)
    failures: list[tuple[float, int]] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)  # latency of turns started after the fault
    fault_at: float | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, session: aiohttp.ClientSession, n: int) -> None:
        self._tasks = [asyncio.create_task(self._customer(session, i)) for i in range(n)]

    def mark_fault(self) -> float:
        self.fault_at = time.monotonic()
        return self.fault_at

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _customer(self, session: aiohttp.ClientSession, n: int) -> None:
        me = f"{self.prefix}-{n}-{uuid.uuid4().hex[:6]}"
        while not self._stop.is_set():
            text = f"xin chào {len(self.acked.get(me, []))}"
            t0 = time.monotonic()
            status = await post_turn(session, self.url, me, text)
            if status == 200:
                self.acked.setdefault(me, []).append(text)
                if self.fault_at is not None and t0 > self.fault_at:
                    self.stalls.append(time.monotonic() - t0)
            else:
                self.failures.append((time.monotonic(), status))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.think)

    @property
    def total_acked(self) -> int:
        return sum(map(len, self.acked.values()))

    def failed_after_fault(self) -> list[int]:
        return [st for t, st in self.failures if self.fault_at is not None and t >= self.fault_at]

    def last_failure_after_fault_s(self) -> float:
        """Seconds from the fault to the last failed request (0 when none failed)."""
        if self.fault_at is None:
            return 0.0
        return max((t - self.fault_at for t, _ in self.failures if t >= self.fault_at), default=0.0)

    def lost(self, stored_texts: Callable[[str], list[str]]) -> dict[str, list[str]]:
        """Acknowledged messages missing from what the store holds, per customer."""
        missing = {}
        for me, texts in self.acked.items():
            stored = stored_texts(me)  # one read per customer, not one per message
            if lost := [t for t in texts if t not in stored]:
                missing[me] = lost
        return missing
