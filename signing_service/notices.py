"""What one notice says, as data: the values its message (a `domain.yml` response, rendered by the
notifier) and its ZNS template are filled with. Read when the notice is sent, so a reminder for
documents signed in the meantime says so (`None`: there is nothing left to say)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import events
from .doc_kinds import DOC_KINDS
from .models import Document, Request
from .services import SERVICE_TYPES, STEPS
from .timeline import Timeline
from .workdays import VN_TZ


async def _awaiting(s: AsyncSession, request_id: int) -> int:
    return int(
        (
            await s.execute(
                select(func.count(Document.id)).where(
                    Document.request_id == request_id, Document.status == "awaiting_signature"
                )
            )
        ).scalar_one()
    )


async def params(
    s: AsyncSession, req: Request, kind: str, payload: dict[str, Any], shift: int, now: datetime
) -> dict[str, str] | None:
    out = {
        "code": req.code,
        "unit": req.unit.name,
        "service": SERVICE_TYPES[req.service_type].name,
        "step": STEPS.get(req.current_step, req.current_step),
    }
    if kind == events.STEP_CHANGED:
        out["step"] = STEPS.get(str(payload.get("step_to")), out["step"])
    elif kind in (events.DOCUMENTS_READY, events.SIGN_REMINDER, events.AMENDMENT_ANSWERED):
        awaiting = await _awaiting(s, req.id)
        if awaiting == 0 and kind != events.AMENDMENT_ANSWERED:
            return None  # signed (or withdrawn) since: a reminder would be wrong
        out["documents"] = str(awaiting)
        doc_id = payload.get("document_id")
        if isinstance(doc_id, int):
            doc_kind = (await s.execute(select(Document.kind).where(Document.id == doc_id))).scalar()
            if doc_kind is not None:
                out["document"] = DOC_KINDS[doc_kind]
        out.setdefault("document", "hồ sơ")
    elif kind == events.REQUEST_LATE:
        if req.completed_at is not None:
            return None
        tl = Timeline(req, shift)
        out["due_date"] = f"{tl.due_at.astimezone(VN_TZ):%d/%m/%Y}"
        out["late_days"] = str(max(tl.late_days(now), 1))
    elif kind == events.SIGNED_COPIES:
        out["documents"] = str(payload.get("documents", 1))
    return out
