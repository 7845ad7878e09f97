"""The signing certificate (biên bản xác nhận ký số): one sealed PDF per signed session saying what
was signed (titles, versions, SHA-256 of the consented drafts and of the signed files), by whom
(masked), how consent and the OTP were given, when, through which chat, and which audit events
record it. Built from the database and the audit trail when the session is signed, then stored: every
later copy is the same bytes, which the check page recognises."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.chat_identity import chat_channel_label

from .context import Context
from .doc_kinds import DOC_KINDS
from .drafts import sha256
from .errors import ApiError
from .masking import mask_name
from .models import AuditEvent, Document, Request, SigningCertificate, SigningSession
from .pades import SealRequest
from .pdf import render_pdf
from .services import SERVICE_TYPES
from .workdays import VN_TZ

CHANNELS = {"sms": "SMS", "email": "email"}


def _at(ts: datetime | None) -> str:
    return f"{ts.astimezone(VN_TZ):%H:%M:%S ngày %d/%m/%Y}" if ts else "—"


def check_url(c: Context, session_id: str) -> str:
    """The public check page of one session (the certificate's QR code and link)."""
    return f"{c.settings.public_base_url}/verify?phien={session_id}"


async def get(c: Context, session_id: str) -> tuple[str, bytes]:
    """(request code, sealed PDF): the stored certificate, made and stored on first use (at signing).
    404 session_not_found; 409 session_not_signed."""
    async with c.db.read() as s:
        row = (
            await s.execute(
                select(Request.code, SigningCertificate.pdf)
                .join(SigningSession, SigningSession.id == SigningCertificate.session_id)
                .join(Request, Request.id == SigningSession.request_id)
                .where(SigningCertificate.session_id == session_id)
            )
        ).one_or_none()
    if row is not None:
        return str(row[0]), bytes(row[1])
    code, pdf = await _build(c, session_id)
    try:
        async with c.db.write() as s:
            s.add(
                SigningCertificate(
                    session_id=session_id, sha256=sha256(pdf), pdf=pdf, created_at=c.clock.now()
                )
            )
    except IntegrityError:  # made at the same moment by another call: keep the one stored first
        return await get(c, session_id)
    return code, pdf


async def _build(c: Context, session_id: str) -> tuple[str, bytes]:
    async with c.db.read() as s:
        sess = await s.get(SigningSession, session_id)
        if sess is None:
            raise ApiError(404, "session_not_found")
        if sess.state != "signed":
            raise ApiError(409, "session_not_signed", state=sess.state)
        req = await s.get(Request, sess.request_id)
        assert req is not None
        docs = {
            d.id: d
            for d in (
                await s.execute(select(Document).where(Document.id.in_([d["id"] for d in sess.documents])))
            ).scalars()
        }
        trail = [
            e
            for e in (
                await s.execute(
                    select(AuditEvent).where(AuditEvent.request_id == req.id).order_by(AuditEvent.id)
                )
            ).scalars()
            if (e.details or {}).get("session_id") == session_id
        ]
    first = {e.action: e for e in reversed(trail)}  # the earliest of each action
    data: dict[str, Any] = {
        "company": req.unit.company,
        "unit_name": req.unit.name,
        "issued_at": _at(c.clock.now()),
        "session_id": session_id,
        "request_code": req.code,
        "service_name": SERVICE_TYPES[req.service_type].name,
        "signer_masked": mask_name(req.customer.name),
        "documents": [
            {
                "title": DOC_KINDS[docs[d["id"]].kind],
                "version": docs[d["id"]].version,
                "draft_sha256": d["sha256"],
                "signed_sha256": docs[d["id"]].signed_sha256 or "—",
            }
            for d in sess.documents
        ],
        "consent_statement": (first["consent_given"].details or {}).get("statement", "")
        if "consent_given" in first
        else "",
        "consent_at": _at(first["consent_given"].at if "consent_given" in first else sess.created_at),
        "chat_channel": chat_channel_label(sess.chat_channel),
        "otp_channel": CHANNELS.get(sess.channel, sess.channel),
        "otp_destination": (first["otp_sent"].details or {}).get("destination", "—")
        if "otp_sent" in first
        else "—",
        "sent_at": _at(first["otp_sent"].at if "otp_sent" in first else None),
        "verified_at": _at(first["otp_verified"].at if "otp_verified" in first else None),
        "signed_at": _at(sess.finished_at),
        "audit_ids": ", ".join(str(e.id) for e in trail) or "—",
        "check_url": check_url(c, session_id),
    }
    title = f"Biên bản xác nhận ký số {session_id}"
    loop = asyncio.get_running_loop()
    pdf = await loop.run_in_executor(
        None, render_pdf, "signing_certificate", data, c.clock.now(), title, c.fonts
    )
    seal = SealRequest(
        "EVNCPC - cskh-assistant",
        f"Biên bản xác nhận ký số phiên {session_id}",
        "cskh-assistant",
        "1900 1909",
    )
    return req.code, await loop.run_in_executor(None, c.sealer.seal, pdf, seal)
