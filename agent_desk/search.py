"""Search over the desk's conversations, and a customer's earlier conversations.

Every filter of a `Query` is a condition on indexed columns of desk_handoffs (agent_desk/db.py):
request code, phone tail, and the covering index (requested_at, id, name key, channel, tag) for
dates, names, channels and tags; PostgreSQL also has a trigram index on the name key
(agent_desk/search_schema.py). Results come newest first, a page at a time; one row more than a
page is read to know whether there is a next page, so no search ever counts all its matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.customer_index import masked_token
from agent_desk.search_query import Query

PAGE_SIZE = 50
MAX_EARLIER = 20


@dataclass(frozen=True)
class Hit:
    """One conversation as a result row: masked customer data only."""

    id: int
    channel: str
    status: str
    request_code: str | None
    requested_at: float
    closed_at: float | None
    close_tag: str | None
    agent_name: str | None
    customer_name_masked: str | None
    customer_phone_masked: str | None


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    page: int
    has_next: bool


def _select() -> sa.sql.Select:
    h, a = db.handoffs, db.agents
    return sa.select(
        h.c.id,
        h.c.channel,
        h.c.status,
        h.c.request_code,
        h.c.requested_at,
        h.c.closed_at,
        h.c.close_tag,
        a.c.display_name.label("agent_name"),
        h.c.customer_name_masked,
        h.c.customer_phone_masked,
    ).select_from(h.outerjoin(a, h.c.agent_id == a.c.id))


def _hit(row: Any) -> Hit:
    return Hit(**row._mapping)


def name_condition(word: str) -> sa.sql.ColumnElement:
    """A typed (folded) word against the name key: the family name starting with it, or a masked
    word with its initial and length. Words are ASCII letters only (search_query), so no LIKE
    wildcard can come from the box."""
    key = db.handoffs.c.customer_name_key
    return sa.or_(key.like(f"% {word}%"), key.like(f"% {masked_token(word)} %"))


def conditions(query: Query) -> list[sa.sql.ColumnElement]:
    h = db.handoffs
    where = [name_condition(word) for word in query.words]
    if query.code:
        where.append(h.c.request_code == query.code)
    if query.phone_tail:
        where.append(h.c.customer_phone_tail == query.phone_tail)
    if query.phone_masked:
        where.append(h.c.customer_phone_masked == query.phone_masked)
    if query.channels:
        where.append(h.c.channel.in_(sorted(query.channels)))
    if query.tags:
        where.append(h.c.close_tag.in_(sorted(query.tags)))
    if query.since is not None:
        where.append(h.c.requested_at >= query.since)
    if query.until is not None:
        where.append(h.c.requested_at < query.until)
    return where


def search_statement(query: Query, page: int) -> sa.sql.Select:
    h = db.handoffs
    newest_first = (h.c.requested_at.desc(), h.c.id.desc())
    # The page's ids first, then their rows: the ids alone can be found in the covering index
    # (requested_at, id, name key, channel, tag) without reading each wide row (the queue preview)
    # a name filter rejects. That made a name search on SQLite ten times faster.
    page_ids = (
        sa.select(h.c.id)
        .where(*conditions(query))
        .order_by(*newest_first)
        .limit(PAGE_SIZE + 1)
        .offset((page - 1) * PAGE_SIZE)
    )
    return _select().where(h.c.id.in_(page_ids)).order_by(*newest_first)


async def search(engine: AsyncEngine, query: Query, page: int = 1) -> Results:
    """One page of the conversations matching every filter of `query`, newest first."""
    async with engine.connect() as conn:
        rows = (await conn.execute(search_statement(query, page))).all()
    return Results([_hit(r) for r in rows[:PAGE_SIZE]], page, len(rows) > PAGE_SIZE)


async def earlier(
    engine: AsyncEngine, handoff_id: int, sender_id: str, request_code: str | None, requested_at: float
) -> tuple[list[Hit], bool]:
    """The same customer's conversations before this one (same chat user, or same request code),
    newest first; and whether there are more than shown."""
    h = db.handoffs
    same = h.c.sender_id == sender_id
    if request_code:
        same = sa.or_(same, h.c.request_code == request_code)
    statement = (
        _select()
        .where(same, h.c.id != handoff_id, h.c.requested_at <= requested_at)
        .order_by(h.c.requested_at.desc(), h.c.id.desc())
        .limit(MAX_EARLIER + 1)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [_hit(r) for r in rows[:MAX_EARLIER]], len(rows) > MAX_EARLIER
