"""Working-day arithmetic (Monday-Friday) for committed processing times.

Public holidays are not modelled yet: a request spanning Tết is judged as if those were working days.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

VN_TZ = timezone(timedelta(hours=7), "ICT")


def is_working_day(d: date) -> bool:
    return d.weekday() < 5


def add_working_days(ts: datetime, days: int) -> datetime:
    """Move `ts` by `days` working days (negative = back), keeping the time of day."""
    step = 1 if days >= 0 else -1
    remaining = abs(days)
    current = ts
    while remaining:
        current += timedelta(days=step)
        if is_working_day(current.astimezone(VN_TZ).date()):
            remaining -= 1
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]; negative when end < start."""
    if end < start:
        return -working_days_between(end, start)
    count, d = 0, start
    while d < end:
        d += timedelta(days=1)
        if is_working_day(d):
            count += 1
    return count


def working_days_late(due: datetime, end: datetime) -> int:
    """Whole working days by which `end` is past `due` (0 when on time)."""
    if end <= due:
        return 0
    return max(working_days_between(due.astimezone(VN_TZ).date(), end.astimezone(VN_TZ).date()), 1)
