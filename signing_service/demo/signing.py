"""Demo rows marked "signed" get real sealed PDFs at start-up (once), so links and verification work."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.orm import undefer

from .. import audit
from ..context import Context
from ..drafts import ensure_draft, sha256
from ..models import Document, Request
from ..pades import SealRequest
from ..requests_query import contacts_of

log = logging.getLogger(__name__)
# The chat channel the audit trail names for demo signatures: they were made in no chat.
DEMO_CHANNEL = "demo"


async def seal_demo_documents(c: Context) -> int:
    async with c.db.read() as s:
        ids = list(
            (
                await s.execute(
                    select(Document.id).where(Document.status == "signed", Document.signed_sha256.is_(None))
                )
            ).scalars()
        )
    if not ids:
        return 0
    now = c.clock.now()
    loop = asyncio.get_running_loop()
    async with c.db.write() as s:
        for doc in (
            await s.execute(select(Document).options(undefer(Document.pdf)).where(Document.id.in_(ids)))
        ).scalars():
            req = await s.get(Request, doc.request_id)
            assert req is not None
            await ensure_draft(s, req, doc, await contacts_of(s, req.id), c.fonts)
            await s.refresh(doc, attribute_names=["pdf"])
            name = req.customer.name
            seal_req = SealRequest(
                name, f"{name} đồng ý ký bằng mã OTP (dữ liệu mẫu)", "cskh-assistant / demo", name
            )
            signed = await loop.run_in_executor(None, c.sealer.seal, doc.pdf, seal_req)
            doc.signed_pdf, doc.signed_sha256, doc.signed_at, doc.signer_name = (
                signed,
                sha256(signed),
                now,
                name,
            )
            audit.record(
                s,
                at=now,
                request_id=req.id,
                actor=audit.customer_actor(DEMO_CHANNEL, None),
                action="document_signed",
                channel="sms",
                document_id=doc.id,
                document_sha256=doc.sha256,
                signed_sha256=doc.signed_sha256,
                method="otp",
                note="demo data",
            )
    log.info("sealed %d demo document(s)", len(ids))
    return len(ids)
