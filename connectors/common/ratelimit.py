"""A small async rate limiter: a global token bucket plus one bucket per recipient."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable


class _Bucket:
    __slots__ = ("rate", "capacity", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, now: float) -> float:
        """Take one token; return how long to wait before the send may go out (0 = now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimiter:
    """Waits so that sends stay under ``global_rate``/s overall and ``per_key_rate``/s per key.

    Each bucket allows a short burst (``*_burst`` sends) before pacing; reservations are made
    under a lock, so concurrent senders queue up fairly instead of all waking at once.
    """

    def __init__(
        self,
        global_rate: float,
        global_burst: float,
        per_key_rate: float | None = None,
        per_key_burst: float = 1,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._global = _Bucket(global_rate, global_burst, clock())
        self._per_key_rate = per_key_rate
        self._per_key_burst = per_key_burst
        self._keys: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys
        self._lock = asyncio.Lock()

    async def acquire(self, key: str | None = None) -> float:
        """Wait for a slot; return the seconds waited."""
        async with self._lock:
            now = self._clock()
            wait = self._global.take(now)
            if key is not None and self._per_key_rate:
                bucket = self._keys.get(key)
                if bucket is None:
                    bucket = self._keys[key] = _Bucket(self._per_key_rate, self._per_key_burst, now)
                    if len(self._keys) > self._max_keys:
                        self._keys.popitem(last=False)
                else:
                    self._keys.move_to_end(key)
                wait = max(wait, bucket.take(now))
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
