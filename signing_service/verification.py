"""Verified chat users: who may see a request's documents and contacts, amend and sign them.

A chat user (chat channel + user id) is verified for one request by proving they hold its registered
phone or e-mail: a one-time code sent there (any channel), or a Telegram contact that Telegram
guarantees is the sender's own number and equals the registered phone. The pair is stored for
`VERIFICATION_TTL_DAYS`, revocable by the customer and by staff; every change is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.phones import normalize_phone

from . import audit, otp, otp_budget
from .context import Context
from .counters import COUNTERS
from .doc_kinds import DOC_KINDS
from .errors import ApiError
from .masking import mask_destination
from .models import (
    ChatVerification,
    Document,
    LookupCandidate,
    NotificationDelivery,
    NotificationSubscription,
    OtpSend,
    Request,
    SigningSession,
    VerificationChallenge,
)
from .outbox import verification_message
from .requests_query import contacts_of, load_request
from .subscriptions import stop_for_chat_user
from .timeline import iso

log = logging.getLogger(__name__)

NOT_VERIFIED = (
    "Vì lý do bảo mật, Quý khách cần xác minh là chủ hồ sơ trước khi xem giấy tờ, thông tin liên hệ "
    "hoặc ký hồ sơ."
)


@dataclass(frozen=True)
class ChatUser:
    channel: str
    user: str

    @property
    def actor(self) -> str:
        return audit.customer_actor(self.channel, self.user)


def _cid(challenge_id: str) -> str:
    return challenge_id[:6] + "…"


async def active(s: AsyncSession, request_id: int, who: ChatUser, now: datetime) -> ChatVerification | None:
    """The chat user's current verification for the request, if any."""
    return (
        (
            await s.execute(
                select(ChatVerification)
                .where(
                    ChatVerification.request_id == request_id,
                    ChatVerification.chat_channel == who.channel,
                    ChatVerification.chat_user == who.user,
                    ChatVerification.revoked_at.is_(None),
                    ChatVerification.expires_at > now,
                )
                .order_by(ChatVerification.verified_at.desc())
            )
        )
        .scalars()
        .first()
    )


async def require(c: Context, s: AsyncSession, req: Request, who: ChatUser | None) -> None:
    """403 `not_verified` unless the chat user is verified for the request (None: a staff call)."""
    if who is None:
        return
    if await active(s, req.id, who, c.clock.now()) is None:
        COUNTERS.inc("not_verified_refusals_total")
        # What the bot needs to offer verification, masked, so it does not have to ask again.
        contacts = await contacts_of(s, req.id)
        masked = {ch: mask_destination(ch, v) for ch, v in contacts.items() if ch in ("sms", "email")}
        frozen = await otp_budget.frozen(s, req.id)
        raise ApiError(403, "not_verified", NOT_VERIFIED, contacts=masked, otp_frozen=frozen)


async def _grant(
    c: Context,
    s: AsyncSession,
    req: Request,
    who: ChatUser,
    method: str,
    now: datetime,
    otp_channel: str | None = None,
    destination: str | None = None,
    sign_credit: bool = False,
) -> ChatVerification:
    ttl = timedelta(days=c.settings.verification_ttl_days)
    credit = timedelta(seconds=c.settings.sign_after_verify_seconds)
    row = ChatVerification(
        request_id=req.id,
        chat_channel=who.channel,
        chat_user=who.user,
        method=method,
        verified_at=now,
        expires_at=now + ttl,
        otp_channel=otp_channel,
        otp_destination=destination,
        sign_credit_until=now + credit if sign_credit and otp_channel and credit else None,
    )
    s.add(row)
    audit.record(
        s,
        at=now,
        request_id=req.id,
        actor=who.actor,
        action="chat_verified",
        channel=who.channel,
        method=method,
    )
    COUNTERS.inc("verifications_total")
    return row


def _verified_json(row: ChatVerification) -> dict[str, Any]:
    return {
        "verified": True,
        "method": row.method,
        "verified_at": iso(row.verified_at),
        "expires_at": iso(row.expires_at),
        "sign_without_new_code_until": iso(row.sign_credit_until),
    }


async def status(c: Context, code: str, who: ChatUser) -> dict[str, Any]:
    """Whether the chat user is verified, and the masked contacts a code can be sent to."""
    async with c.db.read() as s:
        req = await load_request(s, code)
        row = await active(s, req.id, who, c.clock.now())
        contacts = await contacts_of(s, req.id)
        frozen = await otp_budget.frozen(s, req.id)
    masked = {ch: mask_destination(ch, v) for ch, v in contacts.items() if ch in ("sms", "email")}
    base = _verified_json(row) if row else {"verified": False}
    return {**base, "contacts": masked, "otp_frozen": frozen}


def _challenge_json(ch: VerificationChallenge) -> dict[str, Any]:
    assert ch.last_sent_at is not None
    return {
        "challenge_id": ch.id,
        "channel": ch.channel,
        "destination_masked": mask_destination(ch.channel, ch.destination),
        "expires_at": iso(ch.code_expires_at),
        "resend_available_at": iso(ch.last_sent_at + timedelta(seconds=otp.RESEND_COOLDOWN_SECONDS)),
        "attempts_left": max(otp.MAX_WRONG_ATTEMPTS - ch.attempts, 0),
    }


def _issue(c: Context, s: AsyncSession, ch: VerificationChallenge, now: datetime) -> str:
    code = otp.new_code()
    ch.replaced_code_hash = ch.code_hash
    ch.code_hash = otp.code_hash(c.settings.secret_key, "verify:" + ch.id, code)
    ch.code_expires_at = now + timedelta(seconds=otp.CODE_TTL_SECONDS)
    ch.last_sent_at = now
    s.add(OtpSend(request_id=ch.request_id, session_id=ch.id, sent_at=now))
    return code


async def _deliver(
    c: Context, ch: VerificationChallenge, code: str, request_code: str, sign_titles: list[str] | None
) -> None:
    message = verification_message(
        ch.channel, ch.destination, code, request_code, c.clock.now(), sign_titles, ch.chat_channel
    )
    try:
        await c.outbox.send(message)
    except Exception:
        log.exception("verification code delivery failed for challenge %s via %s", _cid(ch.id), ch.channel)
        COUNTERS.inc("otp_send_failures_total")
        async with c.db.write() as s:
            await s.execute(
                update(VerificationChallenge)
                .where(VerificationChallenge.id == ch.id)
                .values(last_sent_at=None)
            )
        raise ApiError(503, "send_failed") from None
    log.info(
        "verification code sent for challenge %s via %s to %s",
        _cid(ch.id),
        ch.channel,
        mask_destination(ch.channel, ch.destination),
    )


async def _titles_awaiting(s: AsyncSession, request_id: int) -> list[str]:
    rows = await s.execute(
        select(Document.kind).where(
            Document.request_id == request_id, Document.status == "awaiting_signature"
        )
    )
    return [DOC_KINDS[k] for (k,) in rows]


async def start(c: Context, code: str, channel: str, who: ChatUser, purpose: str = "view") -> dict[str, Any]:
    """Send a verification code to the request's registered contact on `channel` (sms | email).

    `purpose` "sign": the message names the drafts awaiting signature and says the code confirms
    a signature consented to right after it; only such a code gives the one-signing credit."""
    now = c.clock.now()
    key = otp_budget.chat_key(c.settings.secret_key, who.channel, who.user)
    async with c.db.write() as s:
        req = await load_request(s, code)
        await s.execute(select(Request.id).where(Request.id == req.id).with_for_update())
        destination = (await contacts_of(s, req.id)).get(channel)
        if not destination:
            raise ApiError(400, "no_contact", channel=channel)
        await otp_budget.check_can_start(c, s, req.id, key, now)
        await s.execute(
            update(VerificationChallenge)
            .where(
                VerificationChallenge.request_id == req.id,
                VerificationChallenge.chat_channel == who.channel,
                VerificationChallenge.chat_user == who.user,
                VerificationChallenge.state == "pending",
            )
            .values(state="cancelled", code_hash=None, finished_at=now)
        )
        ch = VerificationChallenge(
            id=otp.new_session_id(),
            request_id=req.id,
            chat_channel=who.channel,
            chat_user=who.user,
            state="pending",
            channel=channel,
            destination=destination,
            attempts=0,
            purpose=purpose,
            created_at=now,
        )
        s.add(ch)
        sign_titles = await _titles_awaiting(s, req.id) if purpose == "sign" else None
        secret_code = _issue(c, s, ch, now)
        otp_budget.record_session(s, req.id, key, now)
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=who.actor,
            action="verification_code_sent",
            channel=channel,
            session_id=ch.id,
            destination=mask_destination(channel, destination),
        )
    await _deliver(c, ch, secret_code, req.code, sign_titles or None)
    return _challenge_json(ch)


async def _locked(s: AsyncSession, challenge_id: str, who: ChatUser) -> VerificationChallenge:
    ch = (
        await s.execute(
            select(VerificationChallenge).where(VerificationChallenge.id == challenge_id).with_for_update()
        )
    ).scalar_one_or_none()
    # Another chat user's challenge is "not found": its id must not be usable from elsewhere.
    if ch is None or (ch.chat_channel, ch.chat_user) != (who.channel, who.user):
        raise ApiError(404, "challenge_not_found")
    if ch.state == "locked":
        raise ApiError(423, "session_locked")
    if ch.state != "pending":
        raise ApiError(409, "session_finished", state=ch.state)
    return ch


async def resend(c: Context, challenge_id: str, who: ChatUser) -> dict[str, Any]:
    now = c.clock.now()
    async with c.db.write() as s:
        ch = await _locked(s, challenge_id, who)
        await otp_budget.check_not_frozen(s, ch.request_id)
        if ch.last_sent_at is not None:
            wait = (ch.last_sent_at + timedelta(seconds=otp.RESEND_COOLDOWN_SECONDS) - now).total_seconds()
            if wait > 0:
                raise ApiError(429, "resend_cooldown", retry_after=int(wait) + (wait % 1 > 0))
        await otp_budget.check_send_limits(c, s, ch.request_id, now)
        secret_code = _issue(c, s, ch, now)
        req = await s.get(Request, ch.request_id)
        assert req is not None
        sign_titles = await _titles_awaiting(s, req.id) if ch.purpose == "sign" else None
    await _deliver(c, ch, secret_code, req.code, sign_titles or None)
    return _challenge_json(ch)


async def check(c: Context, challenge_id: str, who: ChatUser, raw_code: object) -> dict[str, Any]:
    """The code typed by the chat user: verified, or a counted wrong try (5 lock the challenge)."""
    candidate = otp.clean_candidate(raw_code)
    if candidate is None:
        raise ApiError(400, "invalid_otp_format")
    now = c.clock.now()
    key = otp_budget.chat_key(c.settings.secret_key, who.channel, who.user)
    failure: ApiError | None = None
    async with c.db.write() as s:
        ch = await _locked(s, challenge_id, who)
        await otp_budget.check_not_frozen(s, ch.request_id)
        if ch.code_hash is None or ch.code_expires_at is None or now >= ch.code_expires_at:
            raise ApiError(410, "otp_expired")
        if otp.matches(c.settings.secret_key, "verify:" + ch.id, candidate, ch.replaced_code_hash):
            raise ApiError(400, "otp_replaced")
        if not otp.matches(c.settings.secret_key, "verify:" + ch.id, candidate, ch.code_hash):
            ch.attempts += 1
            left = otp.MAX_WRONG_ATTEMPTS - ch.attempts
            froze = await otp_budget.record_wrong(c, s, ch.request_id, key, now)
            audit.record(
                s,
                at=now,
                request_id=ch.request_id,
                actor=audit.SYSTEM,
                action="verification_failed",
                channel=ch.channel,
                session_id=ch.id,
                attempts=ch.attempts,
            )
            if froze:
                ch.state, ch.code_hash, ch.finished_at = "locked", None, now
                failure = ApiError(423, "otp_frozen")
            elif left <= 0:
                ch.state, ch.code_hash, ch.finished_at = "locked", None, now
                failure = ApiError(423, "session_locked")
            else:
                failure = ApiError(400, "wrong_otp", attempts_left=left)
            log.info("wrong verification code for challenge %s (%d tries left)", _cid(ch.id), max(left, 0))
        else:
            ch.state, ch.code_hash, ch.finished_at = "verified", None, now
            req = await s.get(Request, ch.request_id)
            assert req is not None
            row = await _grant(
                c, s, req, who, f"otp_{ch.channel}", now, ch.channel, ch.destination, ch.purpose == "sign"
            )
            result = _verified_json(row)
    if failure:
        raise failure
    log.info("chat user verified by code (challenge %s)", _cid(challenge_id))
    return result


async def by_contact(
    c: Context, code: str, who: ChatUser, phone: str | None, source: str, own_number: bool
) -> dict[str, Any]:
    """A phone number shared in one tap. Verifies only when the platform guarantees it is the sender's
    own number (Telegram) and it equals the registered phone; otherwise says whether it matches, so the
    bot can send the code there."""
    now = c.clock.now()
    wanted = normalize_phone(phone)
    async with c.db.write() as s:
        req = await load_request(s, code)
        registered = normalize_phone((await contacts_of(s, req.id)).get("sms"))
        matches = wanted is not None and wanted == registered
        guaranteed = source == "telegram_contact" and own_number
        if matches and guaranteed:
            row = await _grant(c, s, req, who, "telegram_contact", now)
            return {**_verified_json(row), "phone_matches": True}
        if source == "telegram_contact" and not own_number:
            reason = "not_own_number"  # a contact card of someone else
        elif not guaranteed:
            # Zalo's form can hold any number the user typed: never say whether it matched (that
            # would let a stranger guess the registered phone digit by digit); the bot sends the
            # code to the registered phone instead.
            reason = "not_guaranteed"
            matches = False
        else:
            reason = "phone_mismatch"
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=who.actor,
            action="contact_refused",
            channel=who.channel,
            source=source,
            reason=reason,
        )
    COUNTERS.inc("verification_refused_total")
    log.info("shared contact not accepted as verification (%s, %s)", source, reason)
    return {"verified": False, "phone_matches": matches, "reason": reason}


async def revoke(c: Context, code: str, who: ChatUser | None, by: str) -> int:
    """Unlink: the chat user's verifications of the request (customer), or all of them (staff)."""
    now = c.clock.now()
    async with c.db.write() as s:
        req = await load_request(s, code)
        query = select(ChatVerification).where(
            ChatVerification.request_id == req.id, ChatVerification.revoked_at.is_(None)
        )
        if who is not None:
            query = query.where(
                ChatVerification.chat_channel == who.channel, ChatVerification.chat_user == who.user
            )
        rows = list((await s.execute(query)).scalars())
        for row in rows:
            row.revoked_at, row.revoked_by, row.sign_credit_until = now, by, None
        await stop_for_chat_user(s, req.id, who, now)
        await cancel_pending_signing(s, now, "verification_revoked", request_id=req.id, who=who)
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=who.actor if who else audit.staff_actor(by),
            action="verification_revoked",
            count=len(rows),
        )
    return len(rows)


async def cancel_pending_signing(
    s: AsyncSession, now: datetime, reason: str, request_id: int | None = None, who: ChatUser | None = None
) -> None:
    """Pending signing sessions cancelled, their codes no longer sign: those a revoked verification
    allowed (an unlinked chat must not finish one), or a request's earlier ones when a new session
    starts. `who` None: every chat user's."""
    query = select(SigningSession).where(SigningSession.state == "pending")
    if request_id is not None:
        query = query.where(SigningSession.request_id == request_id)
    if who is not None:
        query = query.where(SigningSession.chat_channel == who.channel, SigningSession.chat_user == who.user)
    for sess in (await s.execute(query.with_for_update())).scalars():
        sess.state, sess.code_hash, sess.finished_at = "cancelled", None, now
        audit.record(
            s,
            at=now,
            request_id=sess.request_id,
            actor=audit.SYSTEM,
            action="otp_revoked",
            session_id=sess.id,
            reason=reason,
        )


async def take_sign_credit(
    s: AsyncSession, request_id: int, who: ChatUser, now: datetime
) -> ChatVerification | None:
    """The OTP verification whose code may confirm one signing now; used up by this call."""
    row = await active(s, request_id, who, now)
    if row is None or row.sign_credit_until is None or row.sign_credit_until <= now or not row.otp_channel:
        return None
    row.sign_credit_until = None
    return row


async def forget_chat_user(c: Context, who: ChatUser, conversation_key: str | None) -> int:
    """ "xóa dữ liệu của tôi": every verification of this chat user revoked, its pending codes cancelled
    and the name-lookup candidates offered to its conversation deleted. Signed documents and their
    audit trail stay: they are the contract's evidence (kept by law, not by this chat)."""
    now = c.clock.now()
    async with c.db.write() as s:
        rows = list(
            (
                await s.execute(
                    select(ChatVerification).where(
                        ChatVerification.chat_channel == who.channel,
                        ChatVerification.chat_user == who.user,
                        ChatVerification.revoked_at.is_(None),
                    )
                )
            ).scalars()
        )
        for row in rows:
            row.revoked_at, row.revoked_by, row.sign_credit_until = now, "customer_erasure", None
        await cancel_pending_signing(s, now, "customer_erasure", who=who)
        for request_id in sorted({row.request_id for row in rows}):
            audit.record(
                s,
                at=now,
                request_id=request_id,
                actor=who.actor,
                action="verification_revoked",
                reason="customer_erasure",
            )
        await s.execute(
            update(VerificationChallenge)
            .where(
                VerificationChallenge.chat_channel == who.channel,
                VerificationChallenge.chat_user == who.user,
                VerificationChallenge.state == "pending",
            )
            .values(state="cancelled", code_hash=None, finished_at=now)
        )
        if conversation_key:
            await s.execute(
                delete(LookupCandidate).where(LookupCandidate.conversation_key == conversation_key)
            )
        # Notifications: the chat user's subscriptions and what was queued for them go too. Locked
        # first, so a fan-out adding a delivery for them waits instead of breaking the erasure.
        subs = select(NotificationSubscription.id).where(
            NotificationSubscription.chat_channel == who.channel,
            NotificationSubscription.chat_user == who.user,
        )
        await s.execute(subs.with_for_update())
        await s.execute(
            delete(NotificationDelivery)
            .where(NotificationDelivery.subscription_id.in_(subs))
            .execution_options(synchronize_session=False)
        )
        await s.execute(
            delete(NotificationSubscription).where(
                NotificationSubscription.chat_channel == who.channel,
                NotificationSubscription.chat_user == who.user,
            )
        )
    log.info("chat user data forgotten: %d verification(s) revoked", len(rows))
    return len(rows)
