"""How many OTPs one attacker can get and guess: caps per request, per chat user and per day, and the
freeze of a request's OTPs after too many wrong codes (docs/security.md §2).

Every OTP session (verification or signing) and every wrong code is one `OtpUsage` row, keyed by the
request and by a keyed hash of the chat user, so the caps hold across sessions, requests and replicas.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import audit
from .context import Context
from .counters import COUNTERS
from .errors import ApiError
from .models import OtpFreeze, OtpSend, OtpUsage

log = logging.getLogger(__name__)
DAY = timedelta(days=1)


NO_CHAT_USER = "-"  # staff calls: only the per-request caps apply


def chat_key(secret: str, chat_channel: str, chat_user: str | None) -> str:
    """Keyed hash of the chat user: the caps need identity, the database need not hold the raw id."""
    if not chat_user:
        return NO_CHAT_USER
    msg = f"chat|{chat_channel}|{chat_user}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()[:32]


def _refused(status: int, code: str, retry_after: int | None = None) -> ApiError:
    COUNTERS.inc("otp_sends_refused_total")
    extra = {"retry_after": max(retry_after, 1)} if retry_after is not None else {}
    return ApiError(status, code, **extra)


async def frozen(s: AsyncSession, request_id: int) -> bool:
    row = await s.execute(
        select(OtpFreeze.id).where(OtpFreeze.request_id == request_id, OtpFreeze.unfrozen_at.is_(None))
    )
    return row.first() is not None


async def check_not_frozen(s: AsyncSession, request_id: int) -> None:
    if await frozen(s, request_id):
        raise _refused(423, "otp_frozen")


async def _count(s: AsyncSession, kind: str, since: datetime, **where: object) -> tuple[int, datetime | None]:
    query = select(func.count(OtpUsage.id), func.min(OtpUsage.at)).where(
        OtpUsage.kind == kind, OtpUsage.at > since
    )
    for column, value in where.items():
        query = query.where(getattr(OtpUsage, column) == value)
    count, oldest = (await s.execute(query)).one()
    return int(count), oldest


async def check_send_limits(c: Context, s: AsyncSession, request_id: int, now: datetime) -> None:
    """Codes sent for one request: per hour and per day (verification and signing together)."""
    for window, cap in (
        (timedelta(hours=1), c.settings.otp_sends_per_hour),
        (DAY, c.settings.otp_sends_per_day),
    ):
        since = now - window
        count, oldest = (
            await s.execute(
                select(func.count(OtpSend.id), func.min(OtpSend.sent_at)).where(
                    OtpSend.request_id == request_id, OtpSend.sent_at > since
                )
            )
        ).one()
        if count >= cap:
            raise _refused(429, "send_limit", int((oldest + window - now).total_seconds()) + 1)


async def check_can_start(c: Context, s: AsyncSession, request_id: int, key: str, now: datetime) -> None:
    """Refuse a new OTP session: frozen request, or this chat user's daily sessions or wrong codes used up."""
    await check_not_frozen(s, request_id)
    since = now - DAY
    for kind, cap, code in (
        ("session", c.settings.otp_sessions_per_chat_user_per_day, "chat_user_otp_limit"),
        ("wrong", c.settings.otp_wrong_per_chat_user_per_day, "too_many_wrong_codes"),
    ):
        if key == NO_CHAT_USER:
            break
        count, oldest = await _count(s, kind, since, chat_key=key)
        if count >= cap:
            log.warning("OTP refused: chat user %s… reached %d %s in a day", key[:8], count, kind)
            raise _refused(429, code, int((oldest + DAY - now).total_seconds()) + 1 if oldest else 3600)
    await check_send_limits(c, s, request_id, now)


def record_session(s: AsyncSession, request_id: int, key: str, now: datetime) -> None:
    s.add(OtpUsage(request_id=request_id, chat_key=key, kind="session", at=now))
    COUNTERS.inc("otp_sessions_started_total")


async def record_wrong(c: Context, s: AsyncSession, request_id: int, key: str, now: datetime) -> bool:
    """Count a wrong code; freeze the request's OTPs when its wrong codes of the day reach the cap.

    Returns True when this wrong code froze the request.
    """
    s.add(OtpUsage(request_id=request_id, chat_key=key, kind="wrong", at=now))
    await s.flush()
    COUNTERS.inc("otp_wrong_codes_total")
    count, _ = await _count(s, "wrong", now - DAY, request_id=request_id)
    if count < c.settings.otp_freeze_after_wrong_per_day or await frozen(s, request_id):
        return False
    s.add(OtpFreeze(request_id=request_id, frozen_at=now, reason="wrong_codes"))
    audit.record(s, at=now, request_id=request_id, actor=audit.SYSTEM, action="otp_frozen", wrong_codes=count)
    COUNTERS.inc("otp_requests_frozen_total")
    log.warning(
        "OTP FROZEN for request id %d after %d wrong codes in a day; staff must unfreeze it",
        request_id,
        count,
    )
    return True


async def unfreeze(s: AsyncSession, request_id: int, by: str, now: datetime) -> int:
    rows = list(
        (
            await s.execute(
                select(OtpFreeze).where(OtpFreeze.request_id == request_id, OtpFreeze.unfrozen_at.is_(None))
            )
        ).scalars()
    )
    for row in rows:
        row.unfrozen_at, row.unfrozen_by = now, by
    if rows:
        audit.record(s, at=now, request_id=request_id, actor=audit.staff_actor(by), action="otp_unfrozen")
    return len(rows)
