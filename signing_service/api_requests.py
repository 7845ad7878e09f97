"""Units, request status, lookup by name (masked candidates) and masked contacts."""

from __future__ import annotations

import re

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .context import ctx
from .errors import ApiError
from .inputs import request_code
from .masking import mask_address, mask_email, mask_name, mask_phone
from .models import Contact, Customer, Document, PowerUnit, Request
from .rate_limit import NAME_LOOKUPS
from .services import SERVICE_TYPES
from .text import UNIT_RE, fold
from .timeline import Timeline, iso, request_status, shift_days

routes = web.RouteTableDef()
MAX_QUERY = 100
MAX_CANDIDATES = 10
# Family name + given name: one common word ("an", "nguyen") would list a unit's customers.
MIN_NAME_WORDS = 2
NAME_TOO_SHORT = "Vui lòng cho biết họ và tên đầy đủ của khách hàng (ví dụ: Nguyễn Văn An)."
# The bot sends its conversation (Rasa sender) id here; name lookups are limited per conversation.
CONVERSATION_HEADER = "X-Conversation-Id"
_UNIT_PREFIX = re.compile(r"^(dien luc|d\.?l\.?|cong ty dien luc)\s+")


def unit_json(u: PowerUnit) -> dict[str, str]:
    return {"code": u.code, "name": u.name, "company": u.company, "area": u.area}


@routes.get("/v1/units")
async def list_units(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    if len(q) > MAX_QUERY:
        raise ApiError(400, "query_too_long")
    async with ctx(request).db.read() as s:
        units = (await s.execute(select(PowerUnit).order_by(PowerUnit.code))).scalars().all()
    needle = _UNIT_PREFIX.sub("", fold(q)).replace(" ", "")
    if needle:
        units = [u for u in units if needle in u.code.lower() or needle in u.name_folded.replace(" ", "")]
    return web.json_response({"units": [unit_json(u) for u in units]})


async def load_request(s: AsyncSession, code: str) -> Request:
    req = (await s.execute(select(Request).where(Request.code == code))).scalar_one_or_none()
    if req is None:
        raise ApiError(404, "request_not_found")
    return req


async def contacts_of(s: AsyncSession, request_id: int) -> dict[str, str]:
    rows = (await s.execute(select(Contact).where(Contact.request_id == request_id))).scalars()
    return {c.channel: c.value for c in rows}


@routes.get("/v1/requests/{code}")
async def get_request(request: web.Request) -> web.Response:
    c = ctx(request)
    code = request_code(request.match_info["code"])
    async with c.db.read() as s:
        req = await load_request(s, code)
        contacts = await contacts_of(s, req.id)
        awaiting = (
            await s.execute(
                select(func.count(Document.id)).where(
                    Document.request_id == req.id, Document.status == "awaiting_signature"
                )
            )
        ).scalar_one()
    now = c.clock.now()
    return web.json_response(request_status(req, shift_days(c.anchor, now), now, contacts, awaiting))


@routes.get("/v1/requests")
async def find_requests(request: web.Request) -> web.Response:
    c = ctx(request)
    unit_code = request.query.get("unit", "").strip().upper()
    name = request.query.get("name", "")
    if len(name) > MAX_QUERY or len(unit_code) > 20:
        raise ApiError(400, "query_too_long")
    if not UNIT_RE.match(unit_code):
        raise ApiError(400, "invalid_unit")
    wanted = fold(name)
    if len(wanted) < 2:
        raise ApiError(400, "name_required")
    # Distinct words with letters: "an an" or "an ." would be one common word again.
    if len({w for w in wanted.split() if any(ch.isalpha() for ch in w)}) < MIN_NAME_WORDS:
        raise ApiError(400, "name_too_short", NAME_TOO_SHORT)
    conversation = request.headers.get(CONVERSATION_HEADER, "").strip()[:200] or None
    async with c.db.read() as s:
        if await s.get(PowerUnit, unit_code) is None:
            raise ApiError(404, "unknown_unit")
        # Counted only for real units, so made-up unit codes cannot fill the limiter's memory.
        request.app[NAME_LOOKUPS].check(unit_code, conversation, c.clock.now())
        # Candidates: the folded name contains every typed word as a whole word.
        like = "%" + "%".join(wanted.split()) + "%"
        rows = (
            (
                await s.execute(
                    select(Request)
                    .join(Customer, Customer.id == Request.customer_id)
                    .where(Request.unit_code == unit_code, Customer.name_folded.like(like))
                    .order_by(Request.received_at.desc())
                    .limit(200)
                )
            )
            .scalars()
            .all()
        )
        words = wanted.split()
        rows = [r for r in rows if all(w in r.customer.name_folded.split() for w in words)]
        exact = [r for r in rows if r.customer.name_folded == wanted]
        matches = exact or rows
        chosen = matches[:MAX_CANDIDATES]
        phones = {r.id: (await contacts_of(s, r.id)).get("sms") for r in chosen}
    now = c.clock.now()
    shift = shift_days(c.anchor, now)
    candidates = [
        {
            "code": r.code,
            "customer_name_masked": mask_name(r.customer.name),
            "address_masked": mask_address(r.supply_address),
            "phone_masked": mask_phone(phones[r.id]),
            "service_name": SERVICE_TYPES[r.service_type].name,
            "received_at": iso(Timeline(r, shift).received_at),
        }
        for r in chosen
    ]
    # `total` > `count` tells the bot to ask for more detail instead of listing everyone.
    return web.json_response({"count": len(candidates), "total": len(matches), "candidates": candidates})


@routes.get("/v1/requests/{code}/contacts")
async def get_contacts(request: web.Request) -> web.Response:
    code = request_code(request.match_info["code"])
    async with ctx(request).db.read() as s:
        req = await load_request(s, code)
        contacts = await contacts_of(s, req.id)
    return web.json_response(
        {"sms": mask_phone(contacts.get("sms")), "email": mask_email(contacts.get("email"))}
    )
