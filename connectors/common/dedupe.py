"""Drop duplicate webhook deliveries (platforms redeliver when they miss an acknowledgement)."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from common.shared_sqlite import SharedSQLite


class SeenKeys(Protocol):
    def check_and_add(self, key: str) -> bool: ...


class RecentKeys:
    """A bounded, in-memory set of keys seen within ``ttl`` seconds (one process).

    Used when no shared file is configured (tests of a single channel object). With several Rasa
    instances on several machines, nginx routes copies of one delivery to the same instance
    (docs/deploy.md).
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


class SharedRecentKeys:
    """The same check in a SQLite file shared by every Rasa worker process on the machine.

    With several Sanic workers a redelivery can reach another process than the first copy; the
    file makes "seen" common to all of them, and it survives a restart. Each check is one short
    transaction (`BEGIN IMMEDIATE`), so two workers cannot both take the same delivery.
    """

    def __init__(
        self, path: Path, namespace: str, ttl: float, max_size: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._path = path
        self._ns = namespace
        self._ttl = ttl
        self._max = max_size
        self._clock = clock
        self._adds = 0
        self._db = SharedSQLite(path)
        conn = self._db.connection()
        conn.execute("CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL)")
        conn.execute("CREATE INDEX IF NOT EXISTS seen_at ON seen (at)")

    def check_and_add(self, key: str) -> bool:
        now = self._clock()
        full_key = f"{self._ns}:{key}"
        with self._db.transaction() as conn:
            row = conn.execute("SELECT at FROM seen WHERE key = ?", (full_key,)).fetchone()
            if row is not None and now - row[0] < self._ttl:
                return False
            conn.execute("INSERT OR REPLACE INTO seen (key, at) VALUES (?, ?)", (full_key, now))
            self._adds += 1
            if self._adds % 500 == 0:  # keep the file bounded: expired keys, then the oldest
                conn.execute("DELETE FROM seen WHERE at < ?", (now - self._ttl,))
                conn.execute(
                    "DELETE FROM seen WHERE key IN (SELECT key FROM seen ORDER BY at DESC LIMIT -1 OFFSET ?)",
                    (self._max,),
                )
        return True

    def __len__(self) -> int:
        return int(self._db.connection().execute("SELECT COUNT(*) FROM seen").fetchone()[0])


def recent_keys(namespace: str, ttl: float, max_size: int) -> SeenKeys:
    """Shared between worker processes when CHANNEL_DEDUPE_DB names a file (devstack sets it)."""
    path = os.environ.get("CHANNEL_DEDUPE_DB", "").strip()
    if path:
        return SharedRecentKeys(Path(path), namespace, ttl, max_size)
    return RecentKeys(ttl, max_size)
