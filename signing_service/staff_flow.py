"""What the back office (or a CMIS adapter) does to a request: move it to its next step.

The signing service is the system of record here; in production CMIS calls the same endpoint
(`docs/api.md`). Each move is audited and raises its notification event in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from . import audit, events
from .context import Context
from .errors import ApiError
from .models import Request, RequestStep
from .services import STEPS
from .timeline import shift_days
from .workdays import add_working_days

log = logging.getLogger(__name__)
DONE = "done"


async def advance(c: Context, code: str, by: str) -> dict[str, Any]:
    now = c.clock.now()
    async with c.db.write() as s:
        req = (
            await s.execute(select(Request).where(Request.code == code).with_for_update(of=Request))
        ).scalar_one_or_none()
        if req is None:
            raise ApiError(404, "request_not_found")
        if req.completed_at is not None or req.current_step == DONE:
            raise ApiError(409, "request_completed", current_step=STEPS[req.current_step])
        steps = (
            (
                await s.execute(
                    select(RequestStep).where(RequestStep.request_id == req.id).order_by(RequestStep.seq)
                )
            )
            .scalars()
            .all()
        )
        keys = [st.key for st in steps]
        if req.current_step not in keys or keys.index(req.current_step) + 1 >= len(keys):
            raise ApiError(409, "no_next_step", current_step=STEPS.get(req.current_step, req.current_step))
        at = _stored(c, req, now)
        here = steps[keys.index(req.current_step)]
        nxt = steps[keys.index(req.current_step) + 1]
        here.finished_at = at
        nxt.started_at = at
        previous, req.current_step = req.current_step, nxt.key
        if nxt.key == DONE:
            nxt.finished_at = at
            req.completed_at = at
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=f"staff:{by}",
            action="request_advanced",
            step_from=previous,
            step_to=nxt.key,
        )
        event = events.raise_event(
            s,
            request_id=req.id,
            kind=events.REQUEST_COMPLETED if nxt.key == DONE else events.STEP_CHANGED,
            at=now,
            step_from=previous,
            step_to=nxt.key,
        )
        await s.flush()
        result = {
            "code": req.code,
            "current_step": STEPS[nxt.key],
            "step_key": nxt.key,
            "previous_step": STEPS[previous],
            "completed": nxt.key == DONE,
            "event_id": event.id,
        }
    log.info("request id %d advanced %s -> %s by staff", req.id, previous, nxt.key)
    return result


def _stored(c: Context, req: Request, now: datetime) -> datetime:
    """Demo rows are shifted forward at read time (`Timeline`): store `now` shifted back so that the
    customer reads today's time."""
    if not req.relative_dates:
        return now
    return add_working_days(now, -shift_days(c.anchor, now))
