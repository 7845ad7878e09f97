"""Request status as shown to customers: steps, current step, due date and the late flag."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from .masking import mask_email, mask_name, mask_phone
from .models import Request
from .services import SERVICE_TYPES, STEPS
from .workdays import VN_TZ, add_working_days, working_days_between, working_days_late


def shift_days(anchor: date | None, now: datetime) -> int:
    """Working days elapsed since the demo anchor: how far relative timestamps move forward."""
    if anchor is None:
        return 0
    today = now.astimezone(VN_TZ).date()
    return max(working_days_between(anchor, today), 0)


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(VN_TZ).isoformat(timespec="seconds") if ts else None


class Timeline:
    """Effective timestamps of one request (demo rows shifted), and what they mean."""

    def __init__(self, req: Request, shift: int) -> None:
        self.req = req
        self.shift = shift if req.relative_dates else 0

    def ts(self, value: datetime | None) -> datetime | None:
        if value is None or not self.shift:
            return value
        return add_working_days(value, self.shift)

    @property
    def received_at(self) -> datetime:
        ts = self.ts(self.req.received_at)
        assert ts is not None
        return ts

    @property
    def due_at(self) -> datetime:
        return add_working_days(self.received_at, self.req.committed_working_days)

    def late_days(self, now: datetime) -> int:
        end = self.ts(self.req.completed_at) or now
        return working_days_late(self.due_at, end)


def request_status(
    req: Request, shift: int, now: datetime, contacts: dict[str, str], awaiting: int
) -> dict[str, Any]:
    tl = Timeline(req, shift)
    service = SERVICE_TYPES[req.service_type]
    steps = []
    for step in req.steps:
        state = "done" if step.finished_at else "current" if step.key == req.current_step else "pending"
        if step.key == "done" and req.completed_at:
            state = "done"
        steps.append(
            {
                "key": step.key,
                "name": STEPS[step.key],
                "state": state,
                "started_at": iso(tl.ts(step.started_at)),
                "finished_at": iso(tl.ts(step.finished_at)),
            }
        )
    late_days = tl.late_days(now)
    return {
        "code": req.code,
        "unit": {"code": req.unit.code, "name": req.unit.name},
        "service_type": req.service_type,
        "service_name": service.name,
        "customer": {
            "name_masked": mask_name(req.customer.name),
            "phone_masked": mask_phone(contacts.get("sms")),
            "email_masked": mask_email(contacts.get("email")),
        },
        "received_at": iso(tl.received_at),
        "committed_working_days": req.committed_working_days,
        "due_at": iso(tl.due_at),
        "status": "completed" if req.completed_at else "in_progress",
        "completed_at": iso(tl.ts(req.completed_at)),
        "late": late_days > 0,
        "late_working_days": late_days,
        "current_step": {"key": req.current_step, "name": STEPS[req.current_step]},
        "steps": steps,
        "documents_awaiting_signature": awaiting,
    }
