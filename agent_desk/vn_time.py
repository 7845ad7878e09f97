"""The desk's working-day clock: "today" for supervisors and reports is a Vietnamese day."""

from __future__ import annotations

from datetime import timedelta, timezone

VN_TZ = timezone(timedelta(hours=7))
