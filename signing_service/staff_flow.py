"""What the back office (or a CMIS adapter) does to a request: move it to its next step.

The signing service is the system of record here; in production CMIS calls the same endpoint
(`docs/api.md`). Each move is audited and raises its notification event in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from . import audit, events
from .context import Context
from .errors import ApiError
from .models import Request, RequestStep
from .requests_query import load_request
from .services import STEPS
from .timeline import Timeline, shift_days

log = logging.getLogger(__name__)
DONE = "done"


async def advance(c: Context, code: str, by: str) -> dict[str, Any]:
    now = c.clock.now()
    async with c.db.write() as s:
        req = await load_request(s, code, lock=True)
        if req.completed_at is not None or req.current_step == DONE:
            raise ApiError(409, "request_completed", current_step=STEPS[req.current_step])
        steps = list(req.steps)  # ordered by seq
        keys = [st.key for st in steps]
        here = keys.index(req.current_step) if req.current_step in keys else len(keys)
        if here + 1 >= len(keys):
            raise ApiError(409, "no_next_step", current_step=STEPS.get(req.current_step, req.current_step))
        _make_absolute(req, steps, shift_days(c.anchor, now))
        nxt = steps[here + 1]
        steps[here].finished_at = now
        nxt.started_at = now
        previous, req.current_step = req.current_step, nxt.key
        if nxt.key == DONE:
            nxt.finished_at = now
            req.completed_at = now
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.staff_actor(by),
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


def _make_absolute(req: Request, steps: list[RequestStep], shift: int) -> None:
    """Demo rows are shifted forward at read time (`Timeline`). Once staff move one, its dates are
    fixed where the customer sees them today and stop moving, so `now` can be stored as it is
    (shifting `now` back and forth by working days is not exact on a weekend)."""
    if not req.relative_dates:
        return
    tl = Timeline(req, shift)
    for st in steps:
        st.started_at, st.finished_at = tl.ts(st.started_at), tl.ts(st.finished_at)
    req.received_at, req.completed_at = tl.received_at, tl.ts(req.completed_at)
    req.relative_dates = False
