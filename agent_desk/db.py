"""The desk's own tables (accounts, sessions, handoffs, notes, canned responses, broker cursor).

Times are UNIX epoch seconds (floats): comparable across SQLite and PostgreSQL and the same unit as
Rasa's event timestamps.
"""

from __future__ import annotations

from typing import Any

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
    # Set when the bot failed on the customer's message (agent_desk/bot_failures.py): the reason.
    sa.Column("bot_error", sa.String(32)),
    sa.Column("first_reply_at", sa.Float),  # the first agent message (reports: first response time)
    # Search (agent_desk/customer_index.py): the customer as the signing service shows staff the
    # request `customer_code`, masked ("Nguyễn V** A*", "090****567"), and keys derived from that.
    sa.Column("customer_code", sa.String(32)),
    sa.Column("customer_name_masked", sa.String(100)),
    sa.Column("customer_name_key", sa.String(200)),
    sa.Column("customer_phone_masked", sa.String(20)),
    sa.Column("customer_phone_tail", sa.String(3)),
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
    # Search and history (agent_desk/search.py), newest first; the name's trigram index is
    # PostgreSQL's own (agent_desk/search_schema.py).
    # Covering: name, channel and tag filters are checked in the index, not on the wide rows.
    sa.Index("ix_desk_handoffs_requested", "requested_at", "id", "customer_name_key", "channel", "close_tag"),
    sa.Index("ix_desk_handoffs_code", "request_code", "requested_at"),
    sa.Index("ix_desk_handoffs_sender", "sender_id", "requested_at"),
    sa.Index("ix_desk_handoffs_phone_tail", "customer_phone_tail", "requested_at"),
    sa.Index(
        "ix_desk_handoffs_customer_pending",
        "id",
        sqlite_where=sa.text("request_code IS NOT NULL AND customer_code IS NULL"),
        postgresql_where=sa.text("request_code IS NOT NULL AND customer_code IS NULL"),
    ),
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

# Assignment (agent_desk/presence.py, assignment.py, transfer.py).
presence = sa.Table(
    "desk_agent_presence",
    metadata,
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # available | busy | away (as chosen)
    sa.Column("changed_at", sa.Float),
    sa.Column("last_assigned_at", sa.Float),  # round robin: the longest without one goes first
)

transfers = sa.Table(
    "desk_transfers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id"), nullable=False, index=True),
    # auto | transfer | queue | takeover | reassign
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("from_agent_id", sa.Integer, sa.ForeignKey("desk_agents.id")),
    sa.Column("to_agent_id", sa.Integer, sa.ForeignKey("desk_agents.id")),  # NULL: back to the queue
    sa.Column("by_agent_id", sa.Integer, sa.ForeignKey("desk_agents.id")),  # NULL: auto-assignment
    sa.Column("note_id", sa.Integer, sa.ForeignKey("desk_notes.id")),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Satisfaction survey after a hand-back (agent_desk/csat.py): one row per handed-back handoff.
csat = sa.Table(
    "desk_csat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id"), nullable=False, unique=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("score", sa.Integer),  # 1..5; NULL until answered
    sa.Column("comment", sa.Text),  # at most csat.MAX_COMMENT characters, as typed (masked when shown)
    sa.Column("asked_at", sa.Float, nullable=False),
    sa.Column("answered_at", sa.Float),
    sa.Column("commented_at", sa.Float),
    # Set while the bot is paused for the optional comment; NULL once it came, was skipped or expired.
    sa.Column("comment_until", sa.Float),
    sa.CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name="ck_desk_csat_score"),
)


def inserted_id(result: sa.engine.CursorResult[Any]) -> int:
    """The integer primary key of the row a single-row INSERT added (SQLAlchemy types
    `inserted_primary_key` as optional: it is None only when the INSERT returned no key at all)."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        # A single writer at a time; the timeout makes concurrent writers wait instead of failing.
        return create_async_engine(url, future=True, connect_args={"timeout": 30})
    return create_async_engine(url, future=True, pool_pre_ping=True)


# Columns added to existing tables after their first release, with the DDL (and default) that fills
# the rows already there: create_all creates missing tables, never missing columns. Append here when a
# column is added to a table above (new tables need nothing).
ADDED_COLUMNS: dict[tuple[str, str], str] = {
    ("desk_handoffs", "bot_error"): "VARCHAR(32)",
    ("desk_handoffs", "customer_code"): "VARCHAR(32)",
    ("desk_handoffs", "customer_name_masked"): "VARCHAR(100)",
    ("desk_handoffs", "customer_name_key"): "VARCHAR(200)",
    ("desk_handoffs", "customer_phone_masked"): "VARCHAR(20)",
    ("desk_handoffs", "customer_phone_tail"): "VARCHAR(3)",
    ("desk_handoffs", "first_reply_at"): "FLOAT",
}


def _add_missing_columns(conn: sa.engine.Connection) -> None:
    inspector = sa.inspect(conn)
    for (table, column), ddl in ADDED_COLUMNS.items():
        if inspector.has_table(table) and column not in {c["name"] for c in inspector.get_columns(table)}:
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def _add_missing_indexes(conn: sa.engine.Connection) -> None:
    """create_all makes a table's indexes only with the table: one added to a table above after
    its first release is made here."""
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


async def create_schema(engine: AsyncEngine) -> None:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database:
        from pathlib import Path

        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
    async with engine.begin() as conn:
        await conn.run_sync(_add_missing_columns)
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_add_missing_indexes)
