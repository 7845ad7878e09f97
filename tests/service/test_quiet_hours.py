"""NOTIFY_QUIET_HOURS: parsing, the window across midnight or within a day, and the release time."""

from __future__ import annotations

from datetime import datetime

import pytest

from signing_service.quiet_hours import QuietHours, release_time
from signing_service.settings import ConfigError, load_settings
from signing_service.workdays import VN_TZ


def vn(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=VN_TZ)


@pytest.mark.parametrize(
    ("at", "released"),
    [
        (vn(20, 59), vn(20, 59)),
        (vn(21, 0), vn(7, 0, day=8)),
        (vn(23, 45), vn(7, 0, day=8)),
        (vn(3, 10), vn(7, 0)),
        (vn(7, 0), vn(7, 0)),
        (vn(12, 0), vn(12, 0)),
    ],
)
def test_the_default_window_holds_night_messages_until_seven(at: datetime, released: datetime) -> None:
    quiet = QuietHours.parse("21:00-07:00")
    assert quiet is not None and quiet.release(at) == released


def test_a_window_within_one_day_and_none() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch is not None
    assert lunch.release(vn(12, 40)) == vn(13, 30) and lunch.release(vn(11, 0)) == vn(11, 0)
    assert QuietHours.parse("") is None and release_time(None, vn(23)) == vn(23)


@pytest.mark.parametrize("bad", ["21-07", "25:00-07:00", "21:00-21:00", "21:00 to 07:00", "x" * 50])
def test_a_malformed_setting_stops_the_start_with_its_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="NOTIFY_QUIET_HOURS"):
        load_settings({"APP_ENV": "test", "NOTIFY_QUIET_HOURS": bad})
