"""Database tables (SQLAlchemy 2.0 in the services' environment; SQLAlchemy 1.4 in Rasa's, whose tests,
bench and devstack import them too). Timestamps are stored in UTC.

The schema must be the same on both: 1.4's `Column` is nullable unless told `nullable=False`, 2.0's
`mapped_column` infers it from the annotation when not told. So NOT NULL columns say `nullable=False`
(or are primary keys) and are annotated `Mapped[X]`; nullable ones are annotated `Mapped[X | None]`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, declarative_base, deferred, relationship
from sqlalchemy.types import TypeDecorator

try:
    from sqlalchemy.orm import mapped_column
except ImportError:  # SQLAlchemy 1.4 (the Rasa environment's tests import these models)
    mapped_column = Column  # type: ignore[assignment,misc]

Base: Any = declarative_base()


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (no tz) and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=timezone.utc) if value is not None else None


# The Meta row holding the day the demo data were anchored: dates shift by the working days since then.
ANCHOR_KEY = "demo_anchor"


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), nullable=False)


class PowerUnit(Base):
    __tablename__ = "power_units"
    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    name_folded: Mapped[str] = mapped_column(String(120), nullable=False)
    company: Mapped[str] = mapped_column(String(120), nullable=False)
    area: Mapped[str] = mapped_column(String(8), nullable=False)  # town | rural: decides the committed time


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    name_folded: Mapped[str] = mapped_column(String(120), nullable=False, index=True)
    address: Mapped[str] = mapped_column(String(255), nullable=False)
    id_number: Mapped[str | None] = mapped_column(String(20))


class Request(Base):
    __tablename__ = "requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(13), nullable=False, unique=True)
    unit_code: Mapped[str] = mapped_column(
        String(6), ForeignKey("power_units.code"), nullable=False, index=True
    )
    customer_id: Mapped[int] = mapped_column(Integer, ForeignKey("customers.id"), nullable=False, index=True)
    service_type: Mapped[str] = mapped_column(String(32), nullable=False)
    supply_address: Mapped[str] = mapped_column(String(255), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    committed_working_days: Mapped[int] = mapped_column(Integer, nullable=False)
    current_step: Mapped[str] = mapped_column(String(32), nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Demo/generated rows keep their story (late or not) whatever today's date: their timestamps are
    # shifted at read time by the working days elapsed since the demo data were anchored.
    relative_dates: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    unit: Mapped[PowerUnit] = relationship("PowerUnit", lazy="joined")
    customer: Mapped[Customer] = relationship("Customer", lazy="joined")
    steps: Mapped[list[RequestStep]] = relationship(
        "RequestStep", order_by="RequestStep.seq", lazy="selectin"
    )


class RequestStep(Base):
    __tablename__ = "request_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(String(32), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Contact(Base):
    """Contacts registered with the request; OTPs only ever go to these."""

    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)  # sms | email
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    __table_args__ = (UniqueConstraint("request_id", "channel"),)


class Document(Base):
    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    # awaiting_signature | amendment_requested | signed
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the draft PDF; set when the draft is rendered
    # deferred(Column(...)): 1.4's Column has no `deferred=`. Nullable, but the stubs type the column of a
    # Column(LargeBinary) as bytes (mapped_column would take its type from the annotation).
    pdf: Mapped[bytes | None] = deferred(Column(LargeBinary))  # type: ignore[arg-type]
    signed_pdf: Mapped[bytes | None] = deferred(Column(LargeBinary))  # type: ignore[arg-type]
    signed_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signer_name: Mapped[str | None] = mapped_column(String(120))
    signing_session_id: Mapped[str | None] = mapped_column(String(64))


class Amendment(Base):
    __tablename__ = "amendments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    document_id: Mapped[int] = mapped_column(Integer, ForeignKey("documents.id"), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    chat_channel: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class SigningSession(Base):
    __tablename__ = "signing_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    # pending -> signing -> signed; or locked / cancelled (revoked by a newer session) / failed
    state: Mapped[str] = mapped_column(String(12), nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    destination: Mapped[str] = mapped_column(String(255), nullable=False)
    # [{"id": 12, "sha256": "..."}]: exactly the drafts the customer consented to.
    documents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    # The code a resend replaced: typed back, it is answered "replaced", not counted as a wrong guess.
    replaced_code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    chat_channel: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_user: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SigningCertificate(Base):
    """The sealed signing certificate of a signed session, made once (at signing) and kept, so the
    copy a customer keeps is byte-for-byte the one the check page recognises."""

    __tablename__ = "signing_certificates"
    session_id: Mapped[str] = mapped_column(String(64), ForeignKey("signing_sessions.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    pdf: Mapped[bytes] = deferred(Column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class OtpSend(Base):
    """One row per code sent, for the per-request hourly cap."""

    __tablename__ = "otp_sends"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False)
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    __table_args__ = (Index("ix_otp_sends_request_time", "request_id", "sent_at"),)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(160), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    channel: Mapped[str | None] = mapped_column(String(16))
    document_id: Mapped[int | None] = mapped_column(Integer)
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class ChatVerification(Base):
    """A chat user verified for a request: (chat channel, chat user id) may see its documents and sign.

    Valid until `expires_at` unless revoked (by the customer, "hủy liên kết", or by staff). After an OTP
    verification, `sign_credit_until` lets one signing of consented drafts reuse that code
    (docs/security.md, "One code for verification and signing").
    """

    __tablename__ = "chat_verifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    chat_channel: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_user: Mapped[str] = mapped_column(String(128), nullable=False)
    method: Mapped[str] = mapped_column(String(24), nullable=False)  # otp_sms | otp_email | telegram_contact
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    otp_channel: Mapped[str | None] = mapped_column(String(8))
    otp_destination: Mapped[str | None] = mapped_column(String(255))
    sign_credit_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_chat_verifications_user", "chat_channel", "chat_user", "request_id"),)


class VerificationChallenge(Base):
    """A one-time code sent to prove a chat user holds the request's registered phone or e-mail."""

    __tablename__ = "verification_challenges"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    chat_channel: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_user: Mapped[str] = mapped_column(String(128), nullable=False)
    # pending -> verified; or locked (5 wrong codes) / cancelled (a newer challenge)
    state: Mapped[str] = mapped_column(String(12), nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    destination: Mapped[str] = mapped_column(String(255), nullable=False)
    # view | sign: only a code sent to sign (its message names the drafts) may confirm a signing.
    purpose: Mapped[str] = mapped_column(String(8), nullable=False, default="view", server_default="view")
    code_hash: Mapped[str | None] = mapped_column(String(64))
    replaced_code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OtpUsage(Base):
    """One row per OTP session started or wrong code typed, for the per-attacker daily caps."""

    __tablename__ = "otp_usage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False)
    chat_key: Mapped[str] = mapped_column(String(64), nullable=False)  # keyed hash of chat channel + user id
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # session | wrong
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    __table_args__ = (
        Index("ix_otp_usage_chat", "chat_key", "kind", "at"),
        Index("ix_otp_usage_request", "request_id", "kind", "at"),
    )


class OtpFreeze(Base):
    """Too many wrong codes for a request in a day: its OTPs are refused until staff unfreeze it."""

    __tablename__ = "otp_freezes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reason: Mapped[str] = mapped_column(String(64), nullable=False)
    unfrozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unfrozen_by: Mapped[str | None] = mapped_column(String(64))


class LookupCandidate(Base):
    """A name-lookup result kept on the server: the chat only ever sees `token` and masked fields."""

    __tablename__ = "lookup_candidates"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_key: Mapped[str] = mapped_column(String(64), nullable=False)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class NotificationEvent(Base):
    """Transactional outbox: a change a customer may be told about, written in the change's own
    transaction (so it exists exactly when the change does). The notifier fans it out to the
    subscribers and sets `dispatched_at`."""

    __tablename__ = "notification_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (Index("ix_notification_events_pending", "dispatched_at", "id"),)


class NotificationSubscription(Base):
    """A verified chat user who said yes to "Nhận thông báo" for a request (stopped: said stop)."""

    __tablename__ = "notification_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, ForeignKey("requests.id"), nullable=False, index=True)
    chat_channel: Mapped[str] = mapped_column(String(16), nullable=False)
    chat_user: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    __table_args__ = (UniqueConstraint("request_id", "chat_channel", "chat_user"),)


class NotificationDelivery(Base):
    """One event for one subscriber. The unique pair makes every event reach each subscriber once,
    whatever the number of fan-out workers or restarts."""

    __tablename__ = "notification_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, ForeignKey("notification_events.id"), nullable=False)
    subscription_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("notification_subscriptions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # pending (not before `not_before`: quiet hours, the daily cap, a retry's backoff) -> claimed (a
    # notifier holds it until `lease_until`) -> sending (the API call is under way) -> sent | failed;
    # cancelled (the customer stopped); interrupted (a notifier died during the call: it may have
    # arrived, so it is not sent again; the desk shows it).
    state: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    via: Mapped[str | None] = mapped_column(String(16))  # telegram | zalo | zns | sms: what carried it
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_notification_deliveries_due", "state", "not_before"),
    )
