"""Queries on requests and their registered contacts, shared by the HTTP handlers and the domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .errors import ApiError
from .models import Contact, Request


async def load_request(s: AsyncSession, code: str, lock: bool = False) -> Request:
    """The request, 404 `request_not_found` otherwise; `lock`: its row locked until the transaction
    ends (only the requests row: its unit and customer are joined, which PostgreSQL cannot lock)."""
    query = select(Request).where(Request.code == code)
    if lock:
        query = query.with_for_update(of=Request)
    req = (await s.execute(query)).scalar_one_or_none()
    if req is None:
        raise ApiError(404, "request_not_found")
    return req


async def contacts_of(s: AsyncSession, request_id: int) -> dict[str, str]:
    rows = (await s.execute(select(Contact).where(Contact.request_id == request_id))).scalars()
    return {c.channel: c.value for c in rows}
