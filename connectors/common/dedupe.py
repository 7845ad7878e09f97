"""Drop duplicate webhook deliveries (platforms redeliver when they miss an acknowledgement)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RecentKeys:
    """A bounded, in-memory set of keys seen within ``ttl`` seconds.

    In memory on purpose: redeliveries come back to the same process within minutes, and losing
    the set on restart only risks answering one redelivered message twice. With several Rasa
    instances behind a load balancer, route a channel's webhook to one instance or accept that.
    """

    def __init__(self, ttl: float, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_size
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, key: str) -> bool:
        """True if ``key`` is new (and remember it), False if it was seen recently."""
        now = self._clock()
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_key, at = next(iter(self._seen.items()))
            if now - at < self._ttl:
                break
            del self._seen[oldest_key]
