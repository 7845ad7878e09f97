"""Units, request status, lookup by name (masked candidates) and masked contacts."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.folding import fold
from common.request_code import normalize_unit_code

from .. import verification
from ..context import Context
from ..errors import ApiError
from ..masking import mask_address, mask_email, mask_name, mask_phone
from ..models import Customer, Document, LookupCandidate, PowerUnit, Request
from ..requests_query import contacts_of, load_request
from ..services import SERVICE_TYPES
from ..timeline import Timeline, iso, request_status, shift_days
from .chat_headers import chat_user
from .code_lookups import charged_code_lookup, conversation_of
from .inputs import request_code
from .keys import NAME_LOOKUPS, ctx

routes = web.RouteTableDef()
MAX_QUERY = 100
MAX_CANDIDATES = 5
CANDIDATE_TTL = timedelta(minutes=30)
# Family name + given name: one common word ("an", "nguyen") would list a unit's customers.
MIN_NAME_WORDS = 2
NAME_TOO_SHORT = "Vui lòng cho biết họ và tên đầy đủ của khách hàng (ví dụ: Nguyễn Văn An)."
_REF = re.compile(r"^[A-Za-z0-9_-]+$")
_UNIT_PREFIX = re.compile(
    r"^(cong ty dien luc|dien luc|tong cong ty dien luc|d\.?l\.?|tinh|thanh pho|tp\.?)\s+"
)
MIN_UNIT_NEEDLE = 3


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
        units = matching_units(units, needle)
    return web.json_response({"units": [unit_json(u) for u in units]})


def matching_units(units: Sequence[PowerUnit], needle: str) -> list[PowerUnit]:
    """Units whose code or name contains `needle`, then every unit of a company or province named.

    Customers name the Điện lực ("hội an"), its company ("PC Quảng Nam") or only the province
    ("ở Đà Nẵng"); a province gives the choice of its units. Needles under 3 letters ("an", "bo")
    would match half the list, so they must be a whole code.
    """
    by_name = [
        u
        for u in units
        if needle == u.code.lower()
        or (
            len(needle) >= MIN_UNIT_NEEDLE
            and (needle in u.code.lower() or needle in u.name_folded.replace(" ", ""))
        )
    ]
    by_company = [u for u in units if u not in by_name and needle in _company_keys(u.company)]
    return by_name + by_company


def _company_keys(company: str) -> tuple[str, str]:
    """ "PC Quảng Nam" → ("pcquangnam", "quangnam")."""
    key = fold(company).replace(" ", "")
    return key, key.removeprefix("pc")


async def _status_json(c: Context, s: AsyncSession, req: Request) -> dict[str, Any]:
    contacts = await contacts_of(s, req.id)
    awaiting = (
        await s.execute(
            select(func.count(Document.id)).where(
                Document.request_id == req.id, Document.status == "awaiting_signature"
            )
        )
    ).scalar_one()
    now = c.clock.now()
    return request_status(req, shift_days(c.anchor, now), now, contacts, awaiting)


@routes.get("/v1/requests/{code}")
async def get_request(request: web.Request) -> web.Response:
    """Status by code (masked, as on the portal), limited per conversation so codes cannot be swept."""
    c = ctx(request)
    code = request_code(request.match_info["code"])
    with charged_code_lookup(request):
        async with c.db.read() as s:
            req = await load_request(s, code)
            return web.json_response(await _status_json(c, s, req))


@routes.get("/v1/requests")
async def find_requests(request: web.Request) -> web.Response:
    """Name lookup: the exact full name (diacritics and case folded) in one unit, at most 5 candidates.

    The candidates stay here: the answer carries an opaque `ref` per candidate, bound to the
    conversation for 30 minutes, and masked fields only; never the request code.
    """
    c = ctx(request)
    raw_unit = request.query.get("unit", "")
    name = request.query.get("name", "")
    if len(name) > MAX_QUERY or len(raw_unit.strip()) > 20:
        raise ApiError(400, "query_too_long")
    unit_code = normalize_unit_code(raw_unit)
    if unit_code is None:
        raise ApiError(400, "invalid_unit")
    wanted = fold(name)
    if len(wanted) < 2:
        raise ApiError(400, "name_required")
    # Distinct words with letters: "an an" or "an ." would be one common word again.
    if len({w for w in wanted.split() if any(ch.isalpha() for ch in w)}) < MIN_NAME_WORDS:
        raise ApiError(400, "name_too_short", NAME_TOO_SHORT)
    conversation = conversation_of(request)
    if conversation is None:
        raise ApiError(400, "conversation_required")
    limiter = request.app[NAME_LOOKUPS]
    now = c.clock.now()
    async with c.db.write() as s:
        if await s.get(PowerUnit, unit_code) is None:
            raise ApiError(404, "unknown_unit")
        # Counted only for real units, so made-up unit codes cannot fill the limiter's memory.
        limiter.check(unit_code, conversation, now)
        rows = (
            (
                await s.execute(
                    select(Request)
                    .join(Customer, Customer.id == Request.customer_id)
                    .where(Request.unit_code == unit_code, Customer.name_folded == wanted)
                    .order_by(Request.received_at.desc())
                    .limit(MAX_CANDIDATES + 1)
                )
            )
            .scalars()
            .all()
        )
        chosen = rows[:MAX_CANDIDATES]
        phones = {r.id: (await contacts_of(s, r.id)).get("sms") for r in chosen}
        key = limiter.conversation_key(conversation)
        await s.execute(delete(LookupCandidate).where(LookupCandidate.expires_at < now))
        refs = {}
        for r in chosen:
            refs[r.id] = secrets.token_urlsafe(16)
            s.add(
                LookupCandidate(
                    token=refs[r.id], conversation_key=key, request_id=r.id, expires_at=now + CANDIDATE_TTL
                )
            )
    shift = shift_days(c.anchor, now)
    candidates = [
        {
            "ref": refs[r.id],
            "customer_name_masked": mask_name(r.customer.name),
            "address_masked": mask_address(r.supply_address),
            "phone_masked": mask_phone(phones[r.id]),
            "service_name": SERVICE_TYPES[r.service_type].name,
            "received_at": iso(Timeline(r, shift).received_at),
        }
        for r in chosen
    ]
    # `more` tells the bot there were more namesakes than it may show: ask for the code instead.
    return web.json_response(
        {"count": len(candidates), "more": len(rows) > len(chosen), "candidates": candidates}
    )


@routes.get("/v1/candidates/{ref}")
async def get_candidate(request: web.Request) -> web.Response:
    """The status of a candidate picked in the chat, only for the conversation it was offered to."""
    c = ctx(request)
    ref = request.match_info["ref"]
    conversation = conversation_of(request)
    # Refs are token_urlsafe: anything else (a NUL byte, other scripts) is simply not one.
    if conversation is None or not 16 <= len(ref) <= 64 or not _REF.match(ref):
        raise ApiError(404, "candidate_not_found")
    key = request.app[NAME_LOOKUPS].conversation_key(conversation)
    async with c.db.read() as s:
        row = await s.get(LookupCandidate, ref)
        if row is None or row.conversation_key != key or row.expires_at <= c.clock.now():
            raise ApiError(404, "candidate_not_found")
        req = await s.get(Request, row.request_id)
        assert req is not None
        return web.json_response(await _status_json(c, s, req))


@routes.get("/v1/requests/{code}/contacts")
async def get_contacts(request: web.Request) -> web.Response:
    c = ctx(request)
    code = request_code(request.match_info["code"])
    async with c.db.read() as s:
        req = await load_request(s, code)
        await verification.require(c, s, req, chat_user(request))
        contacts = await contacts_of(s, req.id)
    return web.json_response(
        {"sms": mask_phone(contacts.get("sms")), "email": mask_email(contacts.get("email"))}
    )
