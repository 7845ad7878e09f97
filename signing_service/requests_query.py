"""Queries on requests, their registered contacts and their documents, for the domain and the handlers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .context import Context
from .drafts import ensure_draft
from .errors import ApiError
from .models import Contact, Document, Request


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


async def request_documents(c: Context, s: AsyncSession, req: Request) -> list[Document]:
    """The request's documents by id, their drafts rendered first if nobody has viewed them yet."""
    docs = list(
        (
            await s.execute(select(Document).where(Document.request_id == req.id).order_by(Document.id))
        ).scalars()
    )
    if any(d.sha256 is None for d in docs):
        contacts = await contacts_of(s, req.id)
        for d in docs:
            await ensure_draft(s, req, d, contacts, c.fonts)
    return docs
