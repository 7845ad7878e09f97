"""PostgreSQL's trigram index on the customer name key (the other search indexes are in db.py).

A name word is matched with LIKE '% word%', which no b-tree can serve; pg_trgm's GIN index can.
The extension ships with PostgreSQL's contrib package but creating it may need rights the desk's
database user lacks: then the desk says so once and name search reads the table instead (slower on
a large table, same results). SQLite has no such index; its LIKE scans the table.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
NAME_INDEX = "ix_desk_handoffs_name_trgm"


async def _has_trigrams(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(await conn.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")))


async def ensure_name_index(engine: AsyncEngine) -> bool:
    """Create the trigram index if the database can have one; True when it exists."""
    if engine.dialect.name != "postgresql":
        return False
    if not await _has_trigrams(engine):
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as exc:
            # No contrib package or no right to create it; another desk creating it at the same
            # moment also lands here, hence the second look.
            if not await _has_trigrams(engine):
                log.warning(
                    "pg_trgm unavailable (%s): name search will scan desk_handoffs", type(exc.orig).__name__
                )
                return False
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                f"CREATE INDEX IF NOT EXISTS {NAME_INDEX} ON desk_handoffs "
                "USING gin (customer_name_key gin_trgm_ops)"
            )
        )
    return True
