"""The desk's own tables (accounts, sessions, handoffs, notes, canned responses, broker cursor).

Times are UNIX epoch seconds (floats): comparable across SQLite and PostgreSQL and the same unit as
Rasa's event timestamps.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = sa.MetaData()

agents = sa.Table(
    "desk_agents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "desk_sessions",
    metadata,
    # Only a hash of the cookie value is stored: a leaked database does not leak live sessions.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

OPEN_STATUSES = ("waiting", "active")

handoffs = sa.Table(
    "desk_handoffs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("channel", sa.String(64), nullable=False, default="rest"),
    # waiting -> active -> closed; waiting -> timed_out | cancelled; active -> waiting (agent idle)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("request_code", sa.String(32)),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("queued_at", sa.Float, nullable=False),
    sa.Column("claimed_at", sa.Float),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id")),
    sa.Column("agent_activity_at", sa.Float),
    sa.Column("closed_at", sa.Float),
    sa.Column("close_tag", sa.String(64)),
    sa.Column("last_messages", sa.Text, nullable=False, default="[]"),
    sa.Column("customer_last_at", sa.Float),
    sa.Column("requeue_count", sa.Integer, nullable=False, default=0),
    # At most one open handoff per conversation, enforced by the database (duplicate broker
    # deliveries and concurrent desks cannot create a second one).
    sa.Index(
        "uq_desk_handoffs_open_sender",
        "sender_id",
        unique=True,
        sqlite_where=sa.text("status IN ('waiting', 'active')"),
        postgresql_where=sa.text("status IN ('waiting', 'active')"),
    ),
    sa.Index("ix_desk_handoffs_status", "status"),
)

notes = sa.Table(
    "desk_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id")),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

canned = sa.Table(
    "desk_canned_responses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Integer, sa.ForeignKey("desk_agents.id")),
    sa.Column("updated_at", sa.Float, nullable=False),
)

broker_cursor = sa.Table(
    "desk_broker_cursor",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # A single writer at a time; the timeout makes concurrent writers wait instead of failing.
        return create_async_engine(url, future=True, connect_args={"timeout": 30})
    return create_async_engine(url, future=True, pool_pre_ping=True)


# Columns added to existing tables after their first release, with the DDL (and default) that fills
# the rows already there: create_all creates missing tables, never missing columns. Append here when a
# column is added to a table above (new tables need nothing).
ADDED_COLUMNS: dict[tuple[str, str], str] = {}


def _add_missing_columns(conn: sa.engine.Connection) -> None:
    inspector = sa.inspect(conn)
    for (table, column), ddl in ADDED_COLUMNS.items():
        if inspector.has_table(table) and column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


async def create_schema(engine: AsyncEngine) -> None:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        from pathlib import Path

        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    async with engine.begin() as conn:
        await conn.run_sync(_add_missing_columns)
        await conn.run_sync(metadata.create_all)
