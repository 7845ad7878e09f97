"""Async database access: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) for replicas.

Concurrency: state changes use conditional UPDATEs (… WHERE state = 'pending') and, on PostgreSQL,
row locks. SQLite has a single writer anyway, so writes of this process are serialised by an asyncio
lock; that avoids SQLITE_BUSY upgrade deadlocks between concurrent transactions.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import AsyncAdaptedQueuePool

from .models import Base

log = logging.getLogger(__name__)
_INIT_LOCK_KEY = 72_700_101  # arbitrary, constant: the advisory lock of start-up work


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE (without RETURNING) matched. AsyncSession.execute types its result as a plain
    Result, since a session cannot promise a cursor in every case; for these statements it is the
    CursorResult that has the count."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"no row count on a {type(result).__name__}")
    return result.rowcount


def async_url(url: str) -> str:
    """Map the configured URL to its async driver."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return str(u.set(drivername="sqlite+aiosqlite"))
    if backend in {"postgresql", "postgres"}:
        return str(u.set(drivername="postgresql+asyncpg"))
    raise ValueError(f"unsupported database {backend!r}")


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
                # SQLAlchemy 1.4 gives a SQLite file a NullPool: with aiosqlite every session
                # started a thread and opened the file. A small pool keeps them (bench/README.md).
                kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=4, max_overflow=4)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        # Tracebacks of database errors must not carry chat ids, codes or names (the SQL parameters).
        kwargs["hide_parameters"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # SQLAlchemy 1.4's form (Rasa's environment runs this service in tests and bench; it has no
        # async_sessionmaker), which 2.0 still supports but its stubs type for sync sessions only.
        self._sessions: Callable[[], AsyncSession] = sessionmaker(  # type: ignore[call-overload]
            self.engine, class_=AsyncSession, expire_on_commit=False, future=True
        )
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def init_lock(self) -> AsyncIterator[None]:
        """Serialise start-up work (schema, demo data) between processes sharing the database.

        Replicas starting together on a fresh PostgreSQL database would otherwise race in CREATE TABLE
        and in the demo inserts; SQLite processes sharing a file use a lock file next to it.
        """
        if self.is_sqlite:
            db_path = make_url(self.url).database
            if not db_path or db_path == ":memory:":
                yield
                return
            with open(f"{db_path}.init.lock", "w") as lock_file:  # noqa: ASYNC230 - local lock file, instant
                await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, lock_file, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
            return
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _INIT_LOCK_KEY})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _INIT_LOCK_KEY})
                await conn.commit()

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(_add_missing_columns)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction; committed on success, rolled back on any exception."""
        if self.is_sqlite:
            async with self._write_lock, self._sessions() as session, session.begin():
                yield session
        else:
            async with self._sessions() as session, session.begin():
                yield session

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# Columns added to existing tables after their first release, with the server default that fills
# the rows already there. create_all creates missing tables, never missing columns.
ADDED_COLUMNS = {
    ("verification_challenges", "purpose"): "VARCHAR(8) NOT NULL DEFAULT 'view'",
    ("verification_challenges", "replaced_code_hash"): "VARCHAR(64)",
    ("signing_sessions", "replaced_code_hash"): "VARCHAR(64)",
    ("notification_deliveries", "lease_until"): "TIMESTAMP",
    ("notification_deliveries", "via"): "VARCHAR(16)",
}


def _add_missing_columns(conn: Any) -> None:
    inspector = sa_inspect(conn)
    for (table, column), ddl in ADDED_COLUMNS.items():
        if not inspector.has_table(table):
            continue
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            log.info("adding column %s.%s", table, column)
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
