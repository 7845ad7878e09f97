"""The OA access token and its single-use, rotating refresh token.

Zalo returns a *new* refresh token on every refresh and kills the old one, so the new pair is
written to disk atomically (temp file, fsync, rename; previous pair kept as ``.prev``) **before**
it is used, and only one refresher runs at a time: an asyncio lock inside the process and an
``flock`` on ``<store>.lock`` across processes (several Rasa workers share the store file).

Start-up: the store file wins over ``ZALO_ACCESS_TOKEN``/``ZALO_REFRESH_TOKEN`` as long as it
descends from the same env pair (the env refresh token is dead after the first refresh); when an
operator puts a new pair in the environment after re-authorising, the env pair wins again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
REFRESH_AHEAD_SECONDS = 300  # refresh a token that expires within 5 minutes before using it


class TokenRefreshError(RuntimeError):
    """The refresh token was refused (an OA admin must authorise the app again) or unreachable."""


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str | None
    expires_at: float | None = None  # epoch seconds; None = unknown
    seed: str = ""  # hash of the env refresh token this pair descends from
    updated_at: float = 0.0


def seed_of(refresh_token: str | None) -> str:
    return hashlib.sha256((refresh_token or "").encode()).hexdigest()[:16]


class TokenStore:
    """The current pair as a small JSON file (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TokenPair | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return TokenPair(**{k: data.get(k) for k in TokenPair.__dataclass_fields__})
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            logger.error("Zalo token store %s is unreadable; using the environment pair", self.path)
            return None

    def save(self, pair: TokenPair) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(pair), f)
            f.flush()
            os.fsync(f.fileno())
        if self.path.exists():
            os.replace(self.path, self.path.with_name(self.path.name + ".prev"))
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Exclusive across processes (flock); waits in a thread so the event loop keeps running."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# (refresh_token) -> OAuth reply body; raises on transport errors
RefreshCall = Callable[[str], Awaitable[dict[str, Any]]]


class TokenManager:
    def __init__(
        self, store: TokenStore, env_access: str, env_refresh: str | None, refresh_call: RefreshCall | None
    ) -> None:
        self._store = store
        self._refresh_call = refresh_call
        self._lock = asyncio.Lock()
        seed = seed_of(env_refresh)
        stored = store.load()
        if stored and stored.seed == seed and stored.access_token:
            self._pair = stored
        else:
            self._pair = TokenPair(env_access, env_refresh, None, seed, time.time())

    @property
    def can_refresh(self) -> bool:
        return self._refresh_call is not None and bool(self._pair.refresh_token)

    async def access_token(self) -> str:
        """The token to use now, refreshed first if it is about to expire."""
        pair = self._pair
        if self.can_refresh and pair.expires_at and pair.expires_at - time.time() < REFRESH_AHEAD_SECONDS:
            return await self.refresh(pair.access_token)
        return pair.access_token

    async def refresh(self, failed_token: str) -> str:
        """Replace ``failed_token``; a no-op if another task or process already did."""
        if not self.can_refresh or self._refresh_call is None:
            raise TokenRefreshError("no refresh token/app secret configured")
        async with self._lock:
            if self._pair.access_token != failed_token:
                return self._pair.access_token
            async with self._store.locked():
                stored = self._store.load()
                if stored and stored.seed == self._pair.seed and stored.access_token != failed_token:
                    self._pair = stored  # another process refreshed while we waited
                    return stored.access_token
                body = await self._refresh_call(self._pair.refresh_token or "")
                new = self._parse(body)
                self._store.save(new)  # persist before use: the old refresh token is now dead
                self._pair = new
                logger.info("Zalo access token refreshed (expires in %s s)", body.get("expires_in"))
                return new.access_token

    def _parse(self, body: dict[str, Any]) -> TokenPair:
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise TokenRefreshError(
                f"refresh refused: error {body.get('error')} {str(body.get('error_name') or '')[:80]}"
            )
        try:
            expires_in: float | None = float(body.get("expires_in") or 0) or None  # a string in Zalo's reply
        except (TypeError, ValueError):
            expires_in = None
        now = time.time()
        return TokenPair(access, refresh, now + expires_in if expires_in else None, self._pair.seed, now)
