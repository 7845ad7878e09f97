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


# Office hours used to place generated step times (08:00-17:00, Monday-Friday).
_REF_MONDAY = date(2020, 1, 6)
_DAY_START_MIN, _DAY_MINUTES = 8 * 60, 9 * 60


def to_work_minutes(ts: datetime) -> int:
    """Minutes of office time since a reference Monday (times outside office hours are clamped)."""
    local = ts.astimezone(VN_TZ)
    days = (local.date() - _REF_MONDAY).days
    weeks, rem = divmod(days, 7)
    if rem >= 5:  # weekend: the start of next Monday
        return (weeks + 1) * 5 * _DAY_MINUTES
    minute = min(max(local.hour * 60 + local.minute - _DAY_START_MIN, 0), _DAY_MINUTES - 1)
    return (weeks * 5 + rem) * _DAY_MINUTES + minute


def from_work_minutes(n: int) -> datetime:
    day_index, minute = divmod(int(n), _DAY_MINUTES)
    weeks, rem = divmod(day_index, 5)
    d = _REF_MONDAY + timedelta(days=weeks * 7 + rem)
    return datetime.combine(d, datetime.min.time(), VN_TZ) + timedelta(minutes=_DAY_START_MIN + minute)
