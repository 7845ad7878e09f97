"""Demo data: the design's named requests plus a few hundred generated ones (deterministic seed).

Loaded once (a `meta` row marks it). Timestamps are generated relative to an anchor working day and
the rows are flagged `relative_dates`, so "received 1 working day ago" stays true on any later date
(see `timeline.shift_days`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from common.folding import fold

from ..db import Database
from ..models import ANCHOR_KEY, Contact, Customer, Document, Meta, PowerUnit, Request, RequestStep
from ..services import SERVICE_TYPES
from ..text import nfc
from ..units import PLACES, UNITS
from ..workdays import VN_TZ, add_working_days, from_work_minutes, is_working_day, to_work_minutes

log = logging.getLogger(__name__)

DEMO_VERSION = "1"
SEED = 20261125


def anchor_day(now: datetime) -> datetime:
    """Midnight (Vietnam time) of the last working day on or before `now`."""
    d = now.astimezone(VN_TZ).date()
    while not is_working_day(d):
        d -= timedelta(days=1)
    return datetime.combine(d, time(0), VN_TZ)


def at(anchor: datetime, working_days_ago: int, hour: int, minute: int = 0) -> datetime:
    return add_working_days(anchor + timedelta(hours=hour, minutes=minute), -working_days_ago)


@dataclass
class NewRequest:
    code: str
    unit_code: str
    customer_name: str
    address: str
    phone: str | None
    email: str | None
    service_type: str
    received_at: datetime
    current_step: str
    completed_at: datetime | None = None
    committed_working_days: int | None = None
    documents: list[tuple[str, str]] = field(default_factory=list)  # (kind, status)
    id_number: str | None = None
    relative_dates: bool = True


def _timeline(req: NewRequest, keys: tuple[str, ...], end: datetime) -> list[RequestStep]:
    """Steps up to the current one, spread evenly between reception and `end`."""
    current = keys.index(req.current_step)
    # Spread the steps over office hours between reception and `end` (no step starting at 2 a.m.).
    first, last = to_work_minutes(req.received_at), to_work_minutes(end)
    starts = [req.received_at] + [
        from_work_minutes(first + (last - first) * i // max(current, 1)) for i in range(1, current + 1)
    ]
    steps = []
    for i, key in enumerate(keys):
        started = starts[i] if i <= current else None
        finished = starts[i + 1] if i < current else None
        if key == "done" and req.completed_at:
            started = finished = req.completed_at
        steps.append(RequestStep(seq=i, key=key, started_at=started, finished_at=finished))
    return steps


async def add_request(session: AsyncSession, req: NewRequest, now: datetime) -> Request:
    """Insert one request with its customer, contacts, steps and document rows (drafts rendered later)."""
    unit = await session.get(PowerUnit, req.unit_code)
    if unit is None:
        raise ValueError(f"unknown unit {req.unit_code}")
    service = SERVICE_TYPES[req.service_type]
    customer = Customer(
        name=nfc(req.customer_name),
        name_folded=fold(req.customer_name),
        address=nfc(req.address),
        id_number=req.id_number,
    )
    session.add(customer)
    await session.flush()
    end = req.completed_at or max(
        req.received_at, add_working_days(anchor_day(now) + timedelta(hours=16), -1)
    )
    row = Request(
        code=req.code,
        unit_code=req.unit_code,
        customer_id=customer.id,
        service_type=req.service_type,
        supply_address=nfc(req.address),
        received_at=req.received_at,
        committed_working_days=req.committed_working_days or service.committed_days(unit.area),
        current_step=req.current_step,
        completed_at=req.completed_at,
        relative_dates=req.relative_dates,
    )
    session.add(row)
    await session.flush()
    for step in _timeline(req, service.steps, end):
        step.request_id = row.id
        session.add(step)
    for channel, value in (("sms", req.phone), ("email", req.email)):
        if value:
            session.add(Contact(request_id=row.id, channel=channel, value=value))
    for kind, status in req.documents:
        session.add(Document(request_id=row.id, kind=kind, status=status, created_at=now))
    await session.flush()
    return row


async def _next_id(session: AsyncSession, model: Any) -> int:
    return int((await session.execute(select(func.coalesce(func.max(model.id), 0)))).scalar_one()) + 1


async def bulk_add(session: AsyncSession, reqs: list[NewRequest], now: datetime, is_sqlite: bool) -> None:
    """Insert many requests with explicit ids in a few executemany statements (seconds, not minutes).

    Only used on a database being initialised (the demo marker row is held by this transaction).
    """
    units = {u.code: u for u in (await session.execute(select(PowerUnit))).scalars()}
    models = (Customer, Request, RequestStep, Contact, Document)
    ids = {m: await _next_id(session, m) for m in models}
    rows: dict[Any, list[dict[str, Any]]] = {m: [] for m in models}

    def add(model: Any, **values: Any) -> int:
        values["id"] = ids[model]
        ids[model] += 1
        rows[model].append(values)
        return int(values["id"])

    day_end = add_working_days(anchor_day(now) + timedelta(hours=16), -1)
    for req in reqs:
        service = SERVICE_TYPES[req.service_type]
        customer_id = add(
            Customer,
            name=nfc(req.customer_name),
            name_folded=fold(req.customer_name),
            address=nfc(req.address),
            id_number=req.id_number,
        )
        request_id = add(
            Request,
            code=req.code,
            unit_code=req.unit_code,
            customer_id=customer_id,
            service_type=req.service_type,
            supply_address=nfc(req.address),
            received_at=req.received_at,
            committed_working_days=req.committed_working_days
            or service.committed_days(units[req.unit_code].area),
            current_step=req.current_step,
            completed_at=req.completed_at,
            relative_dates=req.relative_dates,
        )
        for step in _timeline(req, service.steps, req.completed_at or max(req.received_at, day_end)):
            add(
                RequestStep,
                request_id=request_id,
                seq=step.seq,
                key=step.key,
                started_at=step.started_at,
                finished_at=step.finished_at,
            )
        for channel, value in (("sms", req.phone), ("email", req.email)):
            if value:
                add(Contact, request_id=request_id, channel=channel, value=value)
        for kind, status in req.documents:
            add(Document, request_id=request_id, kind=kind, status=status, version=1, created_at=now)
    for model in models:
        if rows[model]:
            await session.execute(insert(model.__table__), rows[model])
    if not is_sqlite:  # explicit ids bypassed the sequences: move them past the inserted rows
        for model in models:
            table = model.__tablename__
            await session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")  # noqa: S608
            )


def demo_requests(anchor: datetime) -> list[NewRequest]:
    return [
        NewRequest(
            "PC05TK0000123",
            "PC05TK",
            "Nguyễn Văn An",
            "12 Phan Chu Trinh, P. Tân Thạnh, TP Tam Kỳ, Quảng Nam",
            "0905123456",
            "an@example.com",
            "lv_new_supply",
            at(anchor, 1, 8, 30),
            "contract_signing",
            documents=[
                ("hdmbd_sinh_hoat", "awaiting_signature"),
                ("bb_thoa_thuan_dau_noi", "awaiting_signature"),
            ],
            id_number="049090001234",
        ),
        NewRequest(
            "PC05TK0000456",
            "PC05TK",
            "Nguyễn Văn An",
            "45 Hùng Vương, P. An Mỹ, TP Tam Kỳ, Quảng Nam",
            "0935456789",
            None,
            "lv_new_supply",
            at(anchor, 1, 14, 0),
            "survey",
            id_number="049088004567",
        ),
        NewRequest(
            "PC04HC0004567",
            "PC04HC",
            "Trần Thị Bích Ngọc",
            "78 Bạch Đằng, P. Hải Châu, TP Đà Nẵng",
            "0914567890",
            "ngoc.ttb@example.com",
            "lv_new_supply",
            at(anchor, 15, 9, 0),
            "done",
            completed_at=at(anchor, 13, 15, 0),
            documents=[
                ("hdmbd_sinh_hoat", "signed"),
                ("bb_thoa_thuan_dau_noi", "signed"),
                ("bb_treo_thao", "signed"),
            ],
            id_number="048185007788",
        ),
        NewRequest(
            "PC05HA0000789",
            "PC05HA",
            "Lê Minh Tuấn",
            "9 Nguyễn Duy Hiệu, P. Cẩm Phô, TP Hội An, Quảng Nam",
            "0983789012",
            "tuan.lm@example.com",
            "lv_new_supply",
            at(anchor, 9, 10, 0),
            "installation",
            id_number="049079001122",
        ),
        # One request per service added for issue 17, each awaiting the signature of its own kind of
        # document. Four-word names: the generator (three words) never makes a namesake of them. Codes
        # ...00009xx are never generated, and sort after the first generated codes that bot tests take
        # by position (tests/demo_data.py `codes_awaiting`).
        NewRequest(
            "PC05TK0000901",
            "PC05TK",
            "Võ Thị Kim Oanh",
            "56 Trần Cao Vân, P. An Mỹ, TP Tam Kỳ, Quảng Nam",
            "0905901234",
            "oanh.vtk@example.com",
            "purpose_change",
            at(anchor, 1, 9, 0),
            "contract_signing",
            documents=[
                ("bb_ty_le_muc_dich", "awaiting_signature"),
                ("phu_luc_sdbs", "awaiting_signature"),
            ],
            id_number="049186009012",
        ),
        NewRequest(
            "PC05TB0000902",
            "PC05TB",
            "Huỳnh Văn Phước Lộc",
            "Thôn Bình Minh, Xã Bình Minh, H. Thăng Bình, Quảng Nam",
            "0935902345",
            None,
            "quota_change",
            at(anchor, 1, 10, 30),
            "contract_signing",
            documents=[("bb_so_ho_chung_cong_to", "awaiting_signature")],
            id_number="049075009023",
        ),
        NewRequest(
            "PC05TK0000903",
            "PC05TK",
            "Đặng Thị Thu Thủy",
            "21 Trần Cao Vân, P. Tân Thạnh, TP Tam Kỳ, Quảng Nam",
            "0914903456",
            "thuy.dtt@example.com",
            "info_change",
            at(anchor, 1, 14, 30),
            "contract_signing",
            documents=[("phu_luc_sdbs", "awaiting_signature")],
            id_number="049190009034",
        ),
        NewRequest(
            "PC10NS0000904",
            "PC10NS",
            "Lê Hoàng Gia Bảo",
            "Lô 12 Đường 513, P. Nguyên Bình, TX Nghi Sơn, Thanh Hóa",
            "0983904567",
            "bao.lhg@example.com",
            "mv_customer_supply",
            at(anchor, 3, 8, 0),
            "contract_signing",
            documents=[
                ("hdmbd_ngoai_sinh_hoat", "awaiting_signature"),
                ("bb_thoa_thuan_dau_noi", "awaiting_signature"),
                ("hd_dau_tu_cong_trinh", "awaiting_signature"),
            ],
            id_number="038082009045",
        ),
        NewRequest(
            "PC05TK0000905",
            "PC05TK",
            "Trương Công Minh Triết",
            "88 Hùng Vương, P. Tân Thạnh, TP Tam Kỳ, Quảng Nam",
            "0905905678",
            None,
            "lv_new_supply",
            at(anchor, 1, 15, 0),
            "contract_signing",
            documents=[
                ("hdmbd_sinh_hoat", "awaiting_signature"),
                ("bb_thoa_thuan_dau_noi", "awaiting_signature"),
                ("hd_lap_dat_sau_cong_to", "awaiting_signature"),
            ],
            id_number="049095009056",
        ),
    ]


FAMILY = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
]
MIDDLE_M = ["Văn", "Hữu", "Minh", "Đức", "Quốc", "Thanh", "Công", "Xuân"]
MIDDLE_F = ["Thị", "Ngọc", "Thu", "Hồng", "Thanh", "Bích", "Mỹ", "Kim"]
GIVEN_M = [
    "Bình",
    "Cường",
    "Dũng",
    "Hải",
    "Hùng",
    "Khánh",
    "Long",
    "Nam",
    "Phúc",
    "Quân",
    "Sơn",
    "Tài",
    "Thắng",
    "Vinh",
]
GIVEN_F = [
    "Hà",
    "Hạnh",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Nga",
    "Phương",
    "Tâm",
    "Thảo",
    "Trang",
    "Vy",
    "Yến",
]
RESERVED_NAMES = {fold(n) for n in ("Nguyễn Văn An", "Trần Thị Bích Ngọc", "Lê Minh Tuấn")}
PER_UNIT = 18
# The services generated rows draw from: fixed, so that adding a service does not reshuffle the generated
# data other tests rely on (services added later appear in the named demo requests only).
GENERATED_SERVICES = (
    "lv_new_supply",
    "mv_new_supply",
    "capacity_change",
    "meter_relocation",
    "contract_renewal",
    "owner_change",
    "contract_termination",
)


def generated_requests(anchor: datetime, taken: set[str]) -> list[NewRequest]:
    rng = random.Random(SEED)
    out: list[NewRequest] = []
    kinds = list(GENERATED_SERVICES)
    for unit_code, _name, _company, area in UNITS:
        streets, wards, city = PLACES[unit_code]
        for _ in range(PER_UNIT):
            while True:
                code = f"{unit_code}{rng.randrange(1000, 9_999_999):07d}"
                if code not in taken:
                    taken.add(code)
                    break
            female = rng.random() < 0.45
            while True:
                name = " ".join(
                    [
                        rng.choice(FAMILY),
                        rng.choice(MIDDLE_F if female else MIDDLE_M),
                        rng.choice(GIVEN_F if female else GIVEN_M),
                    ]
                )
                if fold(name) not in RESERVED_NAMES:
                    break
            street = rng.choice(streets)
            number = "" if street.startswith(("Thôn", "Đường")) else f"{rng.randint(1, 320)} "
            address = f"{number}{street}, {rng.choice(wards)}, {city}"
            service_key = "lv_new_supply" if rng.random() < 0.6 else rng.choice(kinds)
            service = SERVICE_TYPES[service_key]
            committed = service.committed_days(area)
            step = rng.choice(service.steps)
            late = rng.random() < 0.2
            completed = None
            if step == "done":
                took = rng.randint(committed + 1, committed + 6) if late else rng.randint(1, committed)
                received = at(
                    anchor, took + rng.randint(1, 40), rng.randint(7, 15), rng.choice((0, 15, 30, 45))
                )
                completed = add_working_days(received, took) + timedelta(hours=1)
            else:
                ago = (
                    rng.randint(committed + 1, committed + 12)
                    if late
                    else rng.randint(1, max(committed - 1, 1))
                )
                received = at(anchor, ago, rng.randint(7, 15), rng.choice((0, 15, 30, 45)))
            docs: list[tuple[str, str]] = []
            if step == "contract_signing":
                docs = _documents_for(service_key, rng)
            out.append(
                NewRequest(
                    code,
                    unit_code,
                    name,
                    address,
                    f"09{rng.randrange(0, 10**8):08d}",
                    f"kh{rng.randrange(10**5):05d}@example.com" if rng.random() < 0.6 else None,
                    service_key,
                    received,
                    step,
                    completed_at=completed,
                    documents=docs,
                )
            )
    return out


def _documents_for(service_key: str, rng: random.Random) -> list[tuple[str, str]]:
    waiting = "awaiting_signature"
    if service_key in {"lv_new_supply", "mv_new_supply"}:
        contract = "hdmbd_sinh_hoat" if rng.random() < 0.8 else "hdmbd_ngoai_sinh_hoat"
        return [(contract, waiting), ("bb_thoa_thuan_dau_noi", waiting)]
    if service_key == "contract_termination":
        return [("bb_cham_dut", waiting)]
    if service_key == "owner_change":
        return [("hdmbd_sinh_hoat", waiting)]
    return [("phu_luc_sdbs", waiting)]


async def ensure_units(session: AsyncSession) -> None:
    existing = set((await session.execute(select(PowerUnit.code))).scalars())
    for code, name, company, area in UNITS:
        if code not in existing:
            session.add(PowerUnit(code=code, name=name, name_folded=fold(name), company=company, area=area))
    await session.flush()


async def _add_missing_named(session: AsyncSession, anchor_iso: str, now: datetime) -> None:
    """A database loaded by an earlier version gets the named demo requests added since (new
    services and document kinds), dated from its own anchor; nothing it holds is changed."""
    anchor = datetime.combine(datetime.fromisoformat(anchor_iso).date(), time(0), VN_TZ)
    named = demo_requests(anchor)
    have = set(
        (
            await session.execute(select(Request.code).where(Request.code.in_([r.code for r in named])))
        ).scalars()
    )
    missing = [r for r in named if r.code not in have]
    for req in missing:
        await add_request(session, req, now)
    if missing:
        log.info("demo data: %d named request(s) added to an existing database", len(missing))


async def load_demo_data(db: Database, now: datetime) -> bool:
    """Load the demo data unless already there; True when loaded now."""
    async with db.write() as session:
        await ensure_units(session)
    try:
        async with db.write() as session:
            stored = await session.get(Meta, ANCHOR_KEY)
            if stored is not None:
                await _add_missing_named(session, stored.value, now)
                return False
            anchor = anchor_day(now)
            # Written first: a second replica starting at the same time fails on the primary key.
            session.add(Meta(key=ANCHOR_KEY, value=anchor.date().isoformat()))
            session.add(Meta(key="demo_version", value=DEMO_VERSION))
            await session.flush()
            demo = demo_requests(anchor)
            taken = {r.code for r in demo}
            await bulk_add(session, demo + generated_requests(anchor, taken), now, db.is_sqlite)
    except IntegrityError:
        log.info("demo data loaded concurrently by another process")
        return False
    log.info("demo data loaded (anchor %s)", anchor.date())
    return True
