"""A SQLite file shared by the processes of one machine (Sanic workers, forked after start-up).

Each process opens its own connection on first use (a connection must not cross a fork), in WAL
mode so readers never block the writer; `transaction()` takes the write lock at once
(`BEGIN IMMEDIATE`), so a read-then-write inside it is atomic across processes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SharedSQLite:
    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        path.parent.mkdir(parents=True, exist_ok=True)

    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
