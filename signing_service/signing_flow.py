"""OTP signing sessions: create (send a code), resend, verify and seal the consented drafts.

Concurrency: the request row (sessions, sends) and the session row (verify) are locked FOR UPDATE on
PostgreSQL; on SQLite the process-wide write lock serialises writers. The session is claimed for
signing by a conditional UPDATE (state='pending' and the current code hash), so two verifies with the
right code sign once. Documents are sealed in memory first, then committed in one transaction with
conditional UPDATEs: the batch is all or nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from . import audit, certificate, events, otp, otp_budget, verification
from .context import Context
from .counters import COUNTERS
from .db import rowcount
from .doc_kinds import DOC_KINDS
from .drafts import sha256
from .errors import ApiError
from .links import make_certificate_link, make_link
from .masking import mask_destination, mask_name
from .models import Document, OtpSend, Request, SigningSession
from .outbox import Attachment, otp_message, signed_files_email, signed_notice
from .pades import SealRequest
from .requests_query import contacts_of, load_request, request_documents
from .timeline import iso
from .workdays import VN_TZ

log = logging.getLogger(__name__)

CHANNEL_LABELS = {"sms": "SMS", "email": "email"}
CONSENT_STATEMENT = "Tôi đã đọc, hiểu và đồng ý với dự thảo"


@dataclass(frozen=True)
class SigningOrder:
    """What a customer consents to sign, as the HTTP layer read it: the drafts of one request, where the
    code goes (`sms` | `email`), the chat it is signed in; `reuse_verification`: sign with the code of
    a verification made minutes ago in that chat instead of sending a new one."""

    request_code: str
    document_ids: tuple[int, ...]
    channel: str
    chat_channel: str
    chat_user: str | None
    reuse_verification: bool = False


@dataclass(frozen=True)
class _Batch:
    """A session claimed for signing (committed): what sealing its drafts needs."""

    session_id: str
    request_id: int
    docs: list[Document]
    bound: dict[int, str]  # document id -> SHA-256 of the draft consented to
    signer: str
    channel: str  # where the code went: sms | email
    chat_channel: str
    chat_user: str


def _sid(session_id: str) -> str:
    """Session ids are capabilities: logs show a prefix only."""
    return session_id[:6] + "…"


def session_json(sess: SigningSession, titles: dict[int, str]) -> dict[str, Any]:
    assert sess.last_sent_at is not None
    return {
        "session_id": sess.id,
        "state": sess.state,
        "channel": sess.channel,
        "destination_masked": mask_destination(sess.channel, sess.destination),
        "expires_at": iso(sess.code_expires_at),
        "resend_available_at": iso(sess.last_sent_at + timedelta(seconds=otp.RESEND_COOLDOWN_SECONDS)),
        "attempts_left": max(otp.MAX_WRONG_ATTEMPTS - sess.attempts, 0),
        "documents": [{"id": d["id"], "title": titles[d["id"]]} for d in sess.documents],
    }


def _issue_code(c: Context, s: AsyncSession, sess: SigningSession, now: datetime) -> str:
    """A fresh code replaces the stored hash: the previous code stops working at once."""
    code = otp.new_code()
    sess.replaced_code_hash = sess.code_hash
    sess.code_hash = otp.code_hash(c.settings.secret_key, sess.id, code)
    sess.code_expires_at = now + timedelta(seconds=otp.CODE_TTL_SECONDS)
    sess.last_sent_at = now
    s.add(OtpSend(request_id=sess.request_id, session_id=sess.id, sent_at=now))
    return code


async def _deliver(c: Context, sess: SigningSession, code: str, customer: str, titles: list[str]) -> None:
    message = otp_message(sess.channel, sess.destination, code, titles, customer, c.clock.now())
    try:
        await c.outbox.send(message)
    except Exception:
        log.exception("OTP delivery failed for session %s via %s", _sid(sess.id), sess.channel)
        COUNTERS.inc("otp_send_failures_total")
        async with c.db.write() as s:
            # Let the customer ask again at once: the code never reached them.
            await s.execute(
                update(SigningSession).where(SigningSession.id == sess.id).values(last_sent_at=None)
            )
            audit.record(
                s,
                at=c.clock.now(),
                request_id=sess.request_id,
                actor=audit.SYSTEM,
                action="otp_send_failed",
                channel=sess.channel,
                session_id=sess.id,
            )
        raise ApiError(503, "send_failed") from None
    log.info(
        "OTP sent for session %s via %s to %s",
        _sid(sess.id),
        sess.channel,
        mask_destination(sess.channel, sess.destination),
    )


async def create_session(
    c: Context, order: SigningOrder, who: verification.ChatUser | None = None
) -> dict[str, Any]:
    """Consent to drafts and send a code; with `reuse_verification`, sign at once with the code of a
    verification made minutes ago (409 `verification_not_recent` when there is none)."""
    if order.reuse_verification:
        if who is None:
            raise ApiError(400, "chat_user_required")
        return await sign_with_verification(c, order, who)
    now = c.clock.now()
    actor = audit.customer_actor(order.chat_channel, order.chat_user)
    key = otp_budget.chat_key(c.settings.secret_key, order.chat_channel, order.chat_user)
    async with c.db.write() as s:
        req = await load_request(s, order.request_code)
        await verification.require(c, s, req, who)
        # Serialises sessions and sends of one request across replicas.
        await s.execute(select(Request.id).where(Request.id == req.id).with_for_update())
        wanted = order.document_ids
        docs = {d.id: d for d in await request_documents(c, s, req)}
        missing = [i for i in wanted if i not in docs]
        if missing:
            raise ApiError(404, "document_not_found", document_ids=missing)
        for i in wanted:
            if docs[i].status != "awaiting_signature":
                raise ApiError(409, "document_not_awaiting", document_id=i, document_status=docs[i].status)
        contacts = await contacts_of(s, req.id)
        destination = contacts.get(order.channel)
        if not destination:
            raise ApiError(400, "no_contact", channel=order.channel)
        await otp_budget.check_can_start(c, s, req.id, key, now)
        otp_budget.record_session(s, req.id, key, now)
        # A new session revokes the request's earlier pending sessions and their codes.
        await verification.cancel_pending_signing(s, now, "new_session", request_id=req.id)
        sess = SigningSession(
            id=otp.new_session_id(),
            request_id=req.id,
            state="pending",
            channel=order.channel,
            destination=destination,
            documents=[{"id": i, "sha256": docs[i].sha256} for i in wanted],
            attempts=0,
            chat_channel=order.chat_channel,
            chat_user=order.chat_user,
            created_at=now,
        )
        s.add(sess)
        code = _issue_code(c, s, sess, now)
        for i in wanted:
            audit.record(
                s,
                at=now,
                request_id=req.id,
                actor=actor,
                action="consent_given",
                channel=order.chat_channel,
                document_id=i,
                document_sha256=docs[i].sha256,
                session_id=sess.id,
                statement=CONSENT_STATEMENT,
            )
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.SYSTEM,
            action="otp_sent",
            channel=sess.channel,
            session_id=sess.id,
            destination=mask_destination(sess.channel, destination),
        )
        customer = req.customer.name
    titles = {i: DOC_KINDS[docs[i].kind] for i in wanted}
    await _deliver(c, sess, code, customer, list(titles.values()))
    return session_json(sess, titles)


async def _locked_session(s: AsyncSession, session_id: str) -> SigningSession:
    sess = (
        await s.execute(select(SigningSession).where(SigningSession.id == session_id).with_for_update())
    ).scalar_one_or_none()
    if sess is None:
        raise ApiError(404, "session_not_found")
    if sess.state == "locked":
        raise ApiError(423, "session_locked")
    if sess.state != "pending":
        raise ApiError(409, "session_finished", state=sess.state)
    return sess


async def _titles(s: AsyncSession, sess: SigningSession) -> dict[int, str]:
    ids = [d["id"] for d in sess.documents]
    rows = (await s.execute(select(Document.id, Document.kind).where(Document.id.in_(ids)))).all()
    return {i: DOC_KINDS[k] for i, k in rows}


async def resend(c: Context, session_id: str) -> dict[str, Any]:
    now = c.clock.now()
    async with c.db.write() as s:
        sess = await _locked_session(s, session_id)
        await otp_budget.check_not_frozen(s, sess.request_id)
        await s.execute(select(Request.id).where(Request.id == sess.request_id).with_for_update())
        if sess.last_sent_at is not None:
            wait = (sess.last_sent_at + timedelta(seconds=otp.RESEND_COOLDOWN_SECONDS) - now).total_seconds()
            if wait > 0:
                raise ApiError(429, "resend_cooldown", retry_after=int(wait) + (wait % 1 > 0))
        await otp_budget.check_send_limits(c, s, sess.request_id, now)
        code = _issue_code(c, s, sess, now)
        audit.record(
            s,
            at=now,
            request_id=sess.request_id,
            actor=audit.SYSTEM,
            action="otp_resent",
            channel=sess.channel,
            session_id=sess.id,
            destination=mask_destination(sess.channel, sess.destination),
        )
        req = await s.get(Request, sess.request_id)
        assert req is not None
        customer = req.customer.name
        titles = await _titles(s, sess)
    await _deliver(c, sess, code, customer, list(titles.values()))
    return session_json(sess, titles)


async def verify(c: Context, session_id: str, raw_code: object) -> dict[str, Any]:
    candidate = otp.clean_candidate(raw_code)
    if candidate is None:
        raise ApiError(400, "invalid_otp_format")
    now = c.clock.now()
    outcome = await _check_and_claim(c, session_id, candidate, now)
    if isinstance(outcome, ApiError):
        raise outcome  # raised after the commit: the wrong try or the refusal stays recorded
    return await _seal_all(c, outcome, now)


async def _check_and_claim(c: Context, session_id: str, candidate: str, now: datetime) -> _Batch | ApiError:
    """Check the code and claim the session for signing, in one transaction. A refusal that must be
    recorded (a wrong try counted, a draft changed since the consent) is returned so that the
    transaction commits; the others are raised and leave nothing behind."""
    async with c.db.write() as s:
        sess = await _locked_session(s, session_id)
        await otp_budget.check_not_frozen(s, sess.request_id)
        if sess.code_hash is None or sess.code_expires_at is None or now >= sess.code_expires_at:
            raise ApiError(410, "otp_expired")
        if otp.matches(c.settings.secret_key, sess.id, candidate, sess.replaced_code_hash):
            raise ApiError(400, "otp_replaced")
        if not otp.matches(c.settings.secret_key, sess.id, candidate, sess.code_hash):
            return await _count_wrong_code(c, s, sess, now)
        return await _claim(s, sess, now)


async def _count_wrong_code(c: Context, s: AsyncSession, sess: SigningSession, now: datetime) -> ApiError:
    """One wrong try: counted on the session and the chat user's daily budget; the session locks on the
    last try, the request's codes freeze past the daily budget. Returns the error to answer with."""
    sess.attempts += 1
    left = otp.MAX_WRONG_ATTEMPTS - sess.attempts
    audit.record(
        s,
        at=now,
        request_id=sess.request_id,
        actor=audit.SYSTEM,
        action="otp_failed",
        channel=sess.channel,
        session_id=sess.id,
        attempts=sess.attempts,
    )
    log.info("wrong OTP for session %s (%d tries left)", _sid(sess.id), max(left, 0))
    key = otp_budget.chat_key(c.settings.secret_key, sess.chat_channel, sess.chat_user)
    if await otp_budget.record_wrong(c, s, sess.request_id, key, now):
        sess.state, sess.code_hash, sess.finished_at = "locked", None, now
        return ApiError(423, "otp_frozen")
    if left <= 0:
        sess.state, sess.code_hash, sess.finished_at = "locked", None, now
        audit.record(
            s,
            at=now,
            request_id=sess.request_id,
            actor=audit.SYSTEM,
            action="session_locked",
            session_id=sess.id,
        )
        return ApiError(423, "session_locked")
    return ApiError(400, "wrong_otp", attempts_left=left)


async def _claim(s: AsyncSession, sess: SigningSession, now: datetime) -> _Batch | ApiError:
    """The right code: claim the session, then check the drafts are still the ones consented to
    (returns the 409 to answer with, the session cancelled, when one changed)."""
    session_id, request_id = sess.id, sess.request_id
    # Single use: only the caller whose UPDATE still sees the pending state and this code proceeds.
    claimed = await s.execute(
        update(SigningSession)
        .where(
            SigningSession.id == session_id,
            SigningSession.state == "pending",
            SigningSession.code_hash == sess.code_hash,
        )
        .values(state="signing", code_hash=None)
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        raise ApiError(409, "session_finished", state="signing")
    bound = {d["id"]: d["sha256"] for d in sess.documents}
    docs = list(
        (
            await s.execute(
                select(Document)
                .options(undefer(Document.pdf))
                .where(Document.id.in_(list(bound)))
                .order_by(Document.id)
            )
        ).scalars()
    )
    req = await s.get(Request, request_id)
    assert req is not None
    audit.record(
        s,
        at=now,
        request_id=request_id,
        actor=audit.customer_actor(sess.chat_channel, sess.chat_user),
        action="otp_verified",
        channel=sess.channel,
        session_id=session_id,
    )
    problem = _binding_problem(docs, bound)
    if problem:
        await s.execute(
            update(SigningSession)
            .where(SigningSession.id == session_id)
            .values(state="cancelled", finished_at=now)
        )
        audit.record(
            s,
            at=now,
            request_id=request_id,
            actor=audit.SYSTEM,
            action="signing_refused",
            session_id=session_id,
            reason=problem[0],
            document_id=problem[1],
        )
        return ApiError(409, problem[0], document_id=problem[1])
    return _Batch(
        session_id=session_id,
        request_id=request_id,
        docs=docs,
        bound=bound,
        signer=req.customer.name,
        channel=sess.channel,
        chat_channel=sess.chat_channel,
        chat_user=str(sess.chat_user or ""),
    )


def _binding_problem(docs: list[Document], bound: dict[int, str]) -> tuple[str, int] | None:
    """The drafts must be exactly what the customer consented to, byte for byte."""
    for d in docs:
        if d.status != "awaiting_signature":
            return ("document_not_awaiting", d.id)
        if d.sha256 != bound[d.id] or d.pdf is None or sha256(d.pdf) != bound[d.id]:
            return ("document_changed", d.id)
    if len(docs) != len(bound):
        return ("document_changed", next(i for i in bound if i not in {d.id for d in docs}))
    return None


async def _seal_all(c: Context, batch: _Batch, now: datetime) -> dict[str, Any]:
    signed_at = c.clock.now()
    session_id, request_id, docs, bound = batch.session_id, batch.request_id, batch.docs, batch.bound
    signer, channel, chat_channel = batch.signer, batch.channel, batch.chat_channel

    def reason_for(d: Document) -> str:
        return (
            f"{signer} đồng ý ký bằng mã OTP qua {CHANNEL_LABELS[channel]} lúc "
            f"{signed_at.astimezone(VN_TZ):%H:%M %d/%m/%Y} (kênh {chat_channel}); phiên {session_id}; "
            f"SHA-256 dự thảo {bound[d.id]}"
        )

    loop = asyncio.get_running_loop()
    try:
        results: dict[int, bytes] = {}
        for d in docs:  # sealed in memory first: nothing is stored unless all succeed
            req = SealRequest(signer, reason_for(d), f"cskh-assistant / {chat_channel}", mask_name(signer))
            results[d.id] = await loop.run_in_executor(None, c.sealer.seal, d.pdf, req)
        async with c.db.write() as s:
            for d in docs:
                done = await s.execute(
                    update(Document)
                    .where(
                        Document.id == d.id,
                        Document.status == "awaiting_signature",
                        Document.sha256 == bound[d.id],
                    )
                    .values(
                        status="signed",
                        signed_pdf=results[d.id],
                        signed_sha256=sha256(results[d.id]),
                        signed_at=signed_at,
                        signer_name=signer,
                        signing_session_id=session_id,
                    )
                    .execution_options(synchronize_session=False)
                )
                if rowcount(done) != 1:
                    raise RuntimeError(f"document {d.id} changed during signing")
                audit.record(
                    s,
                    at=signed_at,
                    request_id=request_id,
                    actor=audit.customer_actor(chat_channel, batch.chat_user),
                    action="document_signed",
                    channel=channel,
                    document_id=d.id,
                    document_sha256=bound[d.id],
                    session_id=session_id,
                    signed_sha256=sha256(results[d.id]),
                    chat_channel=chat_channel,
                    method="otp",
                )
            await s.execute(
                update(SigningSession)
                .where(SigningSession.id == session_id)
                .values(state="signed", finished_at=signed_at)
            )
            # Other subscribers (the customer's other chat, say) learn the signed copies exist; the
            # chat that signed has them in its answer already.
            events.raise_event(
                s,
                request_id=request_id,
                kind=events.SIGNED_COPIES,
                at=signed_at,
                documents=len(docs),
                skip_channel=chat_channel,
                skip_user=batch.chat_user,
            )
    except Exception:
        log.exception("signing failed for session %s; nothing was signed", _sid(session_id))
        async with c.db.write() as s:
            await s.execute(
                update(SigningSession)
                .where(SigningSession.id == session_id)
                .values(state="failed", finished_at=now)
            )
            audit.record(
                s,
                at=c.clock.now(),
                request_id=request_id,
                actor=audit.SYSTEM,
                action="signing_failed",
                session_id=session_id,
            )
        raise ApiError(500, "signing_failed") from None
    log.info("session %s signed %d document(s)", _sid(session_id), len(docs))
    signed_files = [(d, results[d.id]) for d in docs]
    emailed_to = await _notify_signed(c, request_id, session_id, signed_files, chat_channel)
    expires = int(c.clock.now().timestamp()) + c.settings.link_ttl_seconds
    base, secret = c.settings.public_base_url, c.settings.secret_key
    return {
        "status": "signed",
        "signed_at": iso(signed_at),
        "session_id": session_id,
        "documents": [
            {
                "id": d.id,
                "title": DOC_KINDS[d.kind],
                "signed_url": make_link(base, secret, d.id, "signed", expires, d.version),
            }
            for d in docs
        ],
        "certificate_url": make_certificate_link(base, secret, session_id, expires),
        "check_url": f"{base}/verify",
        "emailed_to": emailed_to,
    }


async def sign_with_verification(
    c: Context, order: SigningOrder, who: verification.ChatUser
) -> dict[str, Any]:
    """Sign consented drafts with the code the customer typed to verify, minutes ago, in this chat.

    Why this is still a signature by OTP (docs/security.md §0): the code proved, at most
    SIGN_AFTER_VERIFY_SECONDS ago, that this chat user holds the registered contact; the consent that
    follows names the exact drafts (their SHA-256 is bound to the session as for any signing); the
    credit is single-use and tied to this chat user and request; the audit trail records the
    verification, the consent and the reuse; the verification message told the customer that the code
    also confirms a signature consented to right after it.
    """
    now = c.clock.now()
    wanted = order.document_ids
    async with c.db.write() as s:
        req = await load_request(s, order.request_code)
        await s.execute(select(Request.id).where(Request.id == req.id).with_for_update())
        await otp_budget.check_not_frozen(s, req.id)
        current = {d.id: d for d in await request_documents(c, s, req)}
        missing = [i for i in wanted if i not in current]
        if missing:
            raise ApiError(404, "document_not_found", document_ids=missing)
        for i in wanted:
            if current[i].status != "awaiting_signature":
                raise ApiError(409, "document_not_awaiting", document_id=i, document_status=current[i].status)
        await verification.require(c, s, req, who)
        credit = await verification.take_sign_credit(s, req.id, who, now)
        if credit is None:
            raise ApiError(409, "verification_not_recent")
        bound = {i: str(current[i].sha256) for i in wanted}
        docs = list(
            (
                await s.execute(
                    select(Document)
                    .options(undefer(Document.pdf))
                    .where(Document.id.in_(wanted))
                    .order_by(Document.id)
                )
            ).scalars()
        )
        problem = _binding_problem(docs, bound)
        if problem:
            raise ApiError(409, problem[0], document_id=problem[1])
        session_id = otp.new_session_id()
        s.add(
            SigningSession(
                id=session_id,
                request_id=req.id,
                state="signing",
                channel=credit.otp_channel,
                destination=credit.otp_destination or "",
                documents=[{"id": i, "sha256": bound[i]} for i in wanted],
                attempts=0,
                chat_channel=order.chat_channel,
                chat_user=order.chat_user,
                created_at=now,
            )
        )
        for i in wanted:
            audit.record(
                s,
                at=now,
                request_id=req.id,
                actor=who.actor,
                action="consent_given",
                channel=order.chat_channel,
                document_id=i,
                document_sha256=bound[i],
                session_id=session_id,
                statement=CONSENT_STATEMENT,
            )
        audit.record(
            s,
            at=now,
            request_id=req.id,
            actor=audit.SYSTEM,
            action="otp_reused_from_verification",
            channel=credit.otp_channel,
            session_id=session_id,
            verification_id=credit.id,
            verified_at=iso(credit.verified_at),
            destination=mask_destination(str(credit.otp_channel), credit.otp_destination or ""),
        )
        batch = _Batch(
            session_id=session_id,
            request_id=req.id,
            docs=docs,
            bound=bound,
            signer=req.customer.name,
            channel=str(credit.otp_channel),
            chat_channel=order.chat_channel,
            chat_user=who.user,
        )
    log.info("session %s signs with the code of a verification made in this chat", _sid(session_id))
    return await _seal_all(c, batch, now)


async def _notify_signed(
    c: Context, request_id: int, session_id: str, files: list[tuple[Document, bytes]], chat_channel: str
) -> str | None:
    """Tell every registered contact that documents were signed (a signature nobody expected, e.g. by
    a phished code, is noticed at once); the e-mail carries the signed PDFs and the signing
    certificate. Returns the masked e-mail address written to, if any. Best effort: the signature
    stands if a notice fails (the certificate is then made when first asked for)."""
    titles = [DOC_KINDS[d.kind] for d, _ in files]
    try:
        async with c.db.read() as s:
            req = await s.get(Request, request_id)
            contacts = await contacts_of(s, request_id)
            assert req is not None
            code, customer = req.code, req.customer.name
        now = c.clock.now()
        if "sms" in contacts:
            await c.outbox.send(signed_notice("sms", contacts["sms"], code, titles, chat_channel, now))
        if "email" not in contacts:
            return None
        _, certificate_pdf = await certificate.get(c, session_id)
        attachments = [Attachment(f"{code}-{d.kind}-da-ky.pdf", pdf) for d, pdf in files]
        attachments.append(Attachment(f"bien-ban-ky-so-{code}.pdf", certificate_pdf))
        to = contacts["email"]
        check = f"{c.settings.public_base_url}/verify"
        await c.outbox.send(
            signed_files_email(to, customer, code, titles, chat_channel, now, attachments, check)
        )
        return mask_destination("email", to)
    except Exception:
        log.exception("signed notice not sent for request id %d", request_id)
        return None
