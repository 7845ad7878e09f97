"""An exclusive lock between desk processes on one machine (or a shared volume): flock on a file,
polled without blocking the event loop, held by at most one task of this process at a time."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path


class LockBusy(Exception):
    """Another process held the lock for longer than the wait allowed."""


class FileLock:
    def __init__(self, path: Path, wait_s: float) -> None:
        self.path = path
        self.wait_s = wait_s
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        async with self._local:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.wait_s
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if loop.time() > deadline:
                            raise LockBusy(str(self.path)) from None
                        await asyncio.sleep(0.1)
                try:
                    yield
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
