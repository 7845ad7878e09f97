"""Quiet hours for notifications (`NOTIFY_QUIET_HOURS`, Vietnam time): a message due inside them is
held until they end. Default 21:00-07:00; empty means none."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from .workdays import VN_TZ

DEFAULT = "21:00-07:00"
_FORMAT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """None for "" (no quiet hours); ValueError with the expected form otherwise."""
        text = text.strip()
        if not text:
            return None
        m = _FORMAT.match(text)
        if not m or m.group(1, 2) == m.group(3, 4):
            raise ValueError(f"expected HH:MM-HH:MM (e.g. {DEFAULT}) or empty, got {text!r}")
        h1, m1, h2, m2 = map(int, m.groups())
        return cls(time(h1, m1), time(h2, m2))

    def contains(self, at: datetime) -> bool:
        t = at.astimezone(VN_TZ).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # across midnight

    def release(self, at: datetime) -> datetime:
        """`at` itself outside the quiet hours, else the moment they end (in UTC terms, aware)."""
        if not self.contains(at):
            return at
        local = at.astimezone(VN_TZ)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end


def release_time(quiet: QuietHours | None, at: datetime) -> datetime:
    return at if quiet is None else quiet.release(at)
