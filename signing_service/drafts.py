"""Draft PDFs of a request's documents: the data that fills them, rendering, and their SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from .doc_kinds import DOC_KINDS
from .models import Document, Request
from .pdf import render_pdf
from .services import SERVICE_TYPES
from .workdays import VN_TZ

# Transformer sizes (kVA) the drafts pick from, per request.
TRANSFORMER_KVA = (160, 250, 320, 400, 560)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_data(req: Request, doc: Document, contacts: dict[str, str]) -> dict[str, Any]:
    """Fields of the templates, from the request (deterministic per request so drafts are stable)."""
    created = doc.created_at.astimezone(VN_TZ)
    seq = int(req.code[-7:])
    city = req.supply_address.split(",")[-1].strip() if "," in req.supply_address else req.unit.name
    household_pct = 50 + seq % 5 * 10
    return {
        "title": DOC_KINDS[doc.kind],
        "number": f"{req.code}/{doc.id:05d}",
        "version": doc.version,
        "place": city.removeprefix("TP ").removeprefix("TX ").removeprefix("H. "),
        "day": f"{created.day:02d}",
        "month": f"{created.month:02d}",
        "year": created.year,
        "request_code": req.code,
        "received_date": req.received_at.astimezone(VN_TZ).strftime("%d/%m/%Y"),
        "service_name": SERVICE_TYPES[req.service_type].name,
        "company": req.unit.company,
        "unit_name": req.unit.name,
        "unit_code": req.unit.code,
        "customer_name": req.customer.name,
        "id_number": req.customer.id_number or "(chưa cung cấp)",
        "customer_address": req.customer.address,
        "supply_address": req.supply_address,
        "phone": contacts.get("sms", "(chưa đăng ký)"),
        "email": contacts.get("email"),
        "capacity_kw": 3 + seq % 8,
        "meter_location": "tường rào phía trước nhà, cách mặt đất 1,8 m",
        "meter_serial": f"{req.unit_code[-2:]}{seq:08d}",
        "seal_no": f"NP-{seq % 100000:05d}",
        "pole": f"{seq % 40 + 1}/{seq % 7 + 2}",
        "station": f"{req.unit.name.replace('Điện lực ', '')} {seq % 12 + 1}",
        "cable_m": 15 + seq % 30,
        "committed_days": req.committed_working_days,
        # Medium-voltage works invested in by the customer (hd_dau_tu_cong_trinh).
        "mv_line_m": 100 + seq % 40 * 10,
        "transformer_kva": TRANSFORMER_KVA[seq % len(TRANSFORMER_KVA)],
        # Shares of purposes on one meter (bb_ty_le_muc_dich): 50..90 % household use.
        "share_household_pct": household_pct,
        "share_business_pct": 100 - household_pct,
        # Households sharing one meter (bb_so_ho_chung_cong_to): 2..5.
        "households": 2 + seq % 4,
        # Wiring after the meter installed as a service (hd_lap_dat_sau_cong_to).
        "after_meter_m": 10 + seq % 25,
    }


def render_draft(req: Request, doc: Document, contacts: dict[str, str], fonts: dict[str, Path]) -> bytes:
    return render_pdf(doc.kind, document_data(req, doc, contacts), doc.created_at, DOC_KINDS[doc.kind], fonts)


async def ensure_draft(
    session: AsyncSession, req: Request, doc: Document, contacts: dict[str, str], fonts: dict[str, Path]
) -> None:
    """Render the draft once and store it with its hash; a concurrent renderer's result is kept."""
    if doc.sha256 is not None:
        return
    # Data gathered here (ORM objects stay on the event loop); only the CPU-bound layout runs in a thread.
    data = document_data(req, doc, contacts)
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(
        None, render_pdf, doc.kind, data, doc.created_at, DOC_KINDS[doc.kind], fonts
    )
    digest = sha256(pdf)
    await session.execute(
        update(Document)
        .where(Document.id == doc.id, Document.sha256.is_(None))
        .values(pdf=pdf, sha256=digest)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(doc, attribute_names=["sha256"])
