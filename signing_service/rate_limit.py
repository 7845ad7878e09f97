"""Sliding-window limits on name lookups, per conversation and per power unit (docs/security.md §4).

Kept in process memory: each replica counts on its own, so N replicas allow up to N times the
limits. Memory is bounded: every key holds at most `limit` timestamps, idle keys are dropped once
their window has passed, and past `max_keys` the least recently used key is evicted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections import OrderedDict, deque
from datetime import datetime

from .counters import COUNTERS
from .errors import ApiError

log = logging.getLogger(__name__)

MAX_KEYS = 10_000
TOO_MANY_LOOKUPS = (
    "Có quá nhiều lượt tra cứu theo tên. Vui lòng thử lại sau ít phút hoặc tra cứu bằng mã yêu cầu."
)


class SlidingWindow:
    """At most `limit` events per key in any `window_s` seconds (a log of event times per key)."""

    def __init__(self, limit: int, window_s: float, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def keys(self) -> list[str]:
        return list(self._hits)

    def _expire(self, now: float) -> None:
        # Least recently used first: drop keys whose newest event has left the window; stop at the
        # first key still active (later keys were used more recently).
        horizon = now - self.window_s
        while self._hits:
            key, times = next(iter(self._hits.items()))
            if times and times[-1] > horizon:
                break
            del self._hits[key]

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may have one more event; 0 when it may now."""
        self._expire(now)
        times = self._hits.get(key)
        if times is None:
            return 0.0
        horizon = now - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) < self.limit:
            return 0.0
        return times[0] + self.window_s - now

    def add(self, key: str, now: float) -> None:
        times = self._hits.get(key)
        if times is None:
            times = self._hits[key] = deque(maxlen=self.limit)
        times.append(now)
        self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)


class NameLookupLimiter:
    """Both limits together; a lookup counts only when both allow it (refusals are not charged)."""

    def __init__(
        self,
        secret: str,
        per_conversation: int,
        conversation_window_s: int,
        per_unit: int,
        unit_window_s: int,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._secret = secret.encode()
        self.conversations = SlidingWindow(per_conversation, conversation_window_s, max_keys)
        self.units = SlidingWindow(per_unit, unit_window_s, max_keys)

    def conversation_key(self, conversation_id: str) -> str:
        # Keyed hash: the chat user ids (Zalo/Telegram ids, web chat ids) never sit in memory or
        # dumps, and a short id cannot be recovered by hashing candidates without the service secret.
        return hmac.new(self._secret, conversation_id.encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, unit: str, conversation_id: str | None, now: datetime) -> None:
        """Count one lookup, or raise 429 `too_many_lookups` with `retry_after` (whole seconds)."""
        t = now.timestamp()
        conv = self.conversation_key(conversation_id) if conversation_id else None
        waits = {"unit": self.units.retry_after(unit, t)}
        if conv is not None:
            waits["conversation"] = self.conversations.retry_after(conv, t)
        scope, wait = max(waits.items(), key=lambda kv: kv[1])
        if wait > 0:
            COUNTERS.inc("lookups_refused_total")
            log.info("name lookups over the %s limit (unit %s); retry in %.0fs", scope, unit, wait)
            raise ApiError(429, "too_many_lookups", TOO_MANY_LOOKUPS, retry_after=max(1, math.ceil(wait)))
        self.units.add(unit, t)
        if conv is not None:
            self.conversations.add(conv, t)


class CodeLookupLimiter:
    """Code lookups per conversation: all of them, and a tighter count of the ones that found nothing
    (a sweep of random codes misses almost always; a customer mistypes a few times)."""

    def __init__(
        self, secret: str, per_conversation: int, misses: int, window_s: int, max_keys: int = MAX_KEYS
    ) -> None:
        self._secret = secret.encode()
        self.lookups = SlidingWindow(per_conversation, window_s, max_keys)
        self.misses = SlidingWindow(misses, window_s, max_keys)

    def _key(self, conversation_id: str) -> str:
        return hmac.new(self._secret, b"code|" + conversation_id.encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, conversation_id: str, now: datetime) -> None:
        t, key = now.timestamp(), self._key(conversation_id)
        wait = max(self.lookups.retry_after(key, t), self.misses.retry_after(key, t))
        if wait > 0:
            COUNTERS.inc("lookups_refused_total")
            log.info("code lookups over the conversation limit; retry in %.0fs", wait)
            raise ApiError(
                429, "too_many_lookups", TOO_MANY_CODE_LOOKUPS, retry_after=max(1, math.ceil(wait))
            )
        self.lookups.add(key, t)

    def missed(self, conversation_id: str, now: datetime) -> None:
        self.misses.add(self._key(conversation_id), now.timestamp())


TOO_MANY_CODE_LOOKUPS = (
    "Có quá nhiều lượt tra cứu mã yêu cầu. Vui lòng thử lại sau hoặc gọi tổng đài 1900 1909."
)
