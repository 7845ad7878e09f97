"""The one typed client of the signing service (contract: docs/api.md).

Every call is bounded by a timeout (5 s by default). Failures come back as exceptions the actions
turn into polite replies: `ServiceUnavailable` (down, slow, 5xx, not JSON) and `ApiError` (a 4xx
with the service's stable error code and Vietnamese message; `NameTooShort` and `TooManyLookups`
are its subclasses for the name-lookup refusals). Personal data and OTPs are never logged: only
paths without query strings, status codes and error codes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast
from urllib.parse import quote

import aiohttp

from bot.actions.settings import Settings
from common import request_id
from common.chat_identity import (
    CHAT_CHANNEL_HEADER,
    CHAT_USER_HEADER,
    CONVERSATION_HEADER,
    MAX_CONVERSATION_ID,
    valid_chat_user,
)
from common.log_paths import loggable_path

log = logging.getLogger(__name__)

Channel = Literal["sms", "email"]


class Unit(TypedDict):
    code: str
    name: str
    company: str
    area: str


class Step(TypedDict, total=False):
    key: str
    name: str
    state: str
    started_at: str | None
    finished_at: str | None


class CustomerMasked(TypedDict, total=False):
    name_masked: str
    phone_masked: str | None
    email_masked: str | None


class RequestStatus(TypedDict, total=False):
    code: str
    unit: dict[str, str]
    service_type: str
    service_name: str
    customer: CustomerMasked
    received_at: str
    committed_working_days: int
    due_at: str
    status: str
    completed_at: str | None
    late: bool
    late_working_days: int
    current_step: dict[str, str] | None
    steps: list[Step]
    documents_awaiting_signature: int


class Candidate(TypedDict, total=False):
    ref: str  # opaque, bound to this conversation; the code stays on the server
    customer_name_masked: str
    address_masked: str
    phone_masked: str
    service_name: str
    received_at: str


class Document(TypedDict, total=False):
    id: int
    kind: str
    title: str
    status: str
    status_label: str
    sha256: str
    original_url: str
    signed_url: str | None
    certificate_url: str | None  # the signing certificate of the session that signed it
    links_expire_at: str


class Contacts(TypedDict):
    sms: str | None
    email: str | None


class SigningSession(TypedDict, total=False):
    status: str  # "signed" when a fresh verification code confirmed the signing at once
    session_id: str
    channel: str
    destination_masked: str
    expires_at: str
    resend_available_at: str
    documents: list[dict[str, Any]]


class VerifyResult(TypedDict, total=False):
    status: str
    documents: list[dict[str, Any]]


class Amendment(TypedDict, total=False):
    reference: str
    document_id: int
    status: str


class SearchResult(TypedDict):
    candidates: list[Candidate]
    more: bool


class VerificationStatus(TypedDict, total=False):
    verified: bool
    method: str
    expires_at: str
    contacts: dict[str, str]
    otp_frozen: bool


class Challenge(TypedDict, total=False):
    challenge_id: str
    channel: str
    destination_masked: str
    expires_at: str
    attempts_left: int


class ContactResult(TypedDict, total=False):
    verified: bool
    phone_matches: bool
    reason: str


@dataclass(frozen=True)
class ChatUser:
    """The customer as the signing service knows them: Rasa input channel + sender id."""

    channel: str
    user: str

    def headers(self) -> dict[str, str]:
        user = self.user
        if not valid_chat_user(user):  # long or non-ASCII ids: a stable hash instead
            user = hashlib.sha256(user.encode()).hexdigest()
        return {CHAT_CHANNEL_HEADER: self.channel, CHAT_USER_HEADER: user}


class ServiceUnavailable(Exception):
    """The signing service did not answer usefully (down, timeout, 5xx, malformed)."""


@dataclass
class ApiError(Exception):
    """A 4xx answer: `code` is the service's stable error code, `message` Vietnamese customer text."""

    status: int
    code: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}"


class NameTooShort(ApiError):
    """400 `name_too_short`: a name lookup needs family name + given name (two words or more)."""


class NotVerified(ApiError):
    """403 `not_verified`: the chat user must verify they own the request first."""


class OtpFrozen(ApiError):
    """423 `otp_frozen`: too many wrong codes today; staff must unfreeze the request."""


class TooManyLookups(ApiError):
    """429 `too_many_lookups`: too many name lookups in this conversation or for this unit."""

    @property
    def retry_after(self) -> int | None:
        value = self.data.get("retry_after")
        return value if isinstance(value, int) else None


# Error codes the actions tell apart by type; every other 4xx is a plain ApiError.
_TYPED_ERRORS: dict[str, type[ApiError]] = {
    "name_too_short": NameTooShort,
    "too_many_lookups": TooManyLookups,
    "not_verified": NotVerified,
    "otp_frozen": OtpFrozen,
}


def conversation_header(conversation_id: str) -> str:
    """The conversation id as a safe header value: as is when short printable ASCII, else its hash."""
    if (
        conversation_id.isascii()
        and conversation_id.isprintable()
        and 0 < len(conversation_id) <= MAX_CONVERSATION_ID
    ):
        return conversation_id
    return hashlib.sha256(conversation_id.encode()).hexdigest()


class SigningApi:
    """Async client; one aiohttp session per event loop, reused across calls."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SigningApi:
        return cls(settings.signing_url, settings.signing_token, settings.timeout_s)

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = f"{self._base}{path}"
        headers = {**request_id.headers(), **(headers or {})}  # the customer message's id, for its logs
        try:
            async with self._client().request(method, url, params=params, json=body, headers=headers) as resp:
                try:
                    payload = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    payload = None
                if resp.status >= 500 or not isinstance(payload, dict):
                    log.warning("signing service %s %s -> %s", method, loggable_path(path), resp.status)
                    raise ServiceUnavailable(f"{method} {path}: HTTP {resp.status}")
                if resp.status == 401:
                    # Our token is wrong: a configuration fault, not the customer's; say "unavailable".
                    log.error("signing service refused the token (401); check SIGNING_SERVICE_TOKEN")
                    raise ServiceUnavailable(f"{method} {path}: HTTP 401")
                if resp.status >= 400:
                    code = str(payload.get("error", "error"))
                    log.info("signing service %s %s -> %s %s", method, loggable_path(path), resp.status, code)
                    error = _TYPED_ERRORS.get(code, ApiError)
                    raise error(resp.status, code, str(payload.get("message", "")), payload)
                return cast(dict[str, Any], payload)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            log.warning(
                "signing service %s %s unreachable: %s", method, loggable_path(path), type(exc).__name__
            )
            raise ServiceUnavailable(str(exc) or type(exc).__name__) from exc

    # ---- units and requests ----
    async def units(self, query: str | None = None) -> list[Unit]:
        params = {"q": query[:100]} if query else None
        data = await self._call("GET", "/v1/units", params=params)
        return cast(list[Unit], data.get("units", []))

    async def request(self, code: str, conversation_id: str | None = None) -> RequestStatus:
        """Status by code; the conversation id lets the service limit code lookups per conversation."""
        headers = {CONVERSATION_HEADER: conversation_header(conversation_id)} if conversation_id else None
        path = f"/v1/requests/{quote(code, safe='')}"
        return cast(RequestStatus, await self._call("GET", path, headers=headers))

    async def search(self, unit: str, name: str, conversation_id: str) -> SearchResult:
        """Masked candidates under opaque refs; raises NameTooShort (one word) or TooManyLookups (429)."""
        headers = {CONVERSATION_HEADER: conversation_header(conversation_id)}
        params = {"unit": unit, "name": name[:100]}
        data = await self._call("GET", "/v1/requests", params=params, headers=headers)
        return SearchResult(
            candidates=cast(list[Candidate], data.get("candidates", [])), more=bool(data.get("more"))
        )

    async def candidate(self, ref: str, conversation_id: str) -> RequestStatus:
        headers = {CONVERSATION_HEADER: conversation_header(conversation_id)}
        path = f"/v1/candidates/{quote(ref[:64], safe='')}"
        return cast(RequestStatus, await self._call("GET", path, headers=headers))

    # ---- documents (only for a chat user verified for the request: NotVerified otherwise) ----
    async def documents(self, code: str, who: ChatUser) -> list[Document]:
        path = f"/v1/requests/{quote(code, safe='')}/documents"
        data = await self._call("GET", path, headers=who.headers())
        return cast(list[Document], data.get("documents", []))

    async def contacts(self, code: str, who: ChatUser) -> Contacts:
        path = f"/v1/requests/{quote(code, safe='')}/contacts"
        data = await self._call("GET", path, headers=who.headers())
        return Contacts(sms=data.get("sms"), email=data.get("email"))

    async def create_amendment(self, code: str, document_id: int, text: str, who: ChatUser) -> Amendment:
        body = {"document_id": document_id, "text": text, "chat_channel": who.channel}
        path = f"/v1/requests/{quote(code, safe='')}/amendments"
        return cast(Amendment, await self._call("POST", path, body=body, headers=who.headers()))

    # ---- verification of the chat user ----
    async def verification_status(self, code: str, who: ChatUser) -> VerificationStatus:
        path = f"/v1/requests/{quote(code, safe='')}/verification"
        return cast(VerificationStatus, await self._call("GET", path, headers=who.headers()))

    async def start_verification(
        self, code: str, channel: Channel, who: ChatUser, purpose: str = "view"
    ) -> Challenge:
        body = {"request_code": code, "channel": channel, "purpose": purpose}
        return cast(
            Challenge, await self._call("POST", "/v1/verifications", body=body, headers=who.headers())
        )

    async def resend_verification(self, challenge_id: str, who: ChatUser) -> Challenge:
        path = f"/v1/verifications/{quote(challenge_id, safe='')}/resend"
        return cast(Challenge, await self._call("POST", path, headers=who.headers()))

    async def check_verification(self, challenge_id: str, otp: str, who: ChatUser) -> VerificationStatus:
        path = f"/v1/verifications/{quote(challenge_id, safe='')}/verify"
        return cast(
            VerificationStatus, await self._call("POST", path, body={"otp": otp}, headers=who.headers())
        )

    async def verify_contact(
        self, code: str, who: ChatUser, phone: str | None, source: str, own_number: bool
    ) -> ContactResult:
        body = {"request_code": code, "phone": phone, "source": source, "own_number": own_number}
        path = "/v1/verifications/contact"
        return cast(ContactResult, await self._call("POST", path, body=body, headers=who.headers()))

    # ---- notifications ("Nhận thông báo" / "dừng thông báo") ----
    async def set_notifications(self, code: str, who: ChatUser, on: bool, conversation_id: str) -> bool:
        """Subscribe (needs verification: NotVerified otherwise) or stop; True if that changed anything.
        Charged as a code lookup of the conversation (TooManyLookups), as the code may be typed."""
        path = f"/v1/requests/{quote(code, safe='')}/notifications"
        headers = {**who.headers(), CONVERSATION_HEADER: conversation_header(conversation_id)}
        data = await self._call("POST" if on else "DELETE", path, headers=headers)
        return bool(data.get("changed"))

    async def unlink(self, code: str, who: ChatUser) -> int:
        path = f"/v1/requests/{quote(code, safe='')}/verification"
        return int((await self._call("DELETE", path, headers=who.headers())).get("revoked", 0))

    async def forget(self, who: ChatUser, conversation_id: str) -> int:
        """Erasure: revoke every verification of this chat user, drop its pending codes and candidates."""
        headers = {**who.headers(), CONVERSATION_HEADER: conversation_header(conversation_id)}
        return int((await self._call("POST", "/v1/chat-users/forget", headers=headers)).get("revoked", 0))

    # ---- OTP signing ----
    async def start_signing(
        self,
        code: str,
        document_ids: list[int],
        channel: Channel,
        who: ChatUser,
        with_verification: bool = False,
    ) -> SigningSession:
        """Send a code; `with_verification`: sign now with the code of a verification made minutes ago
        (the answer then has `status: signed`; ApiError 409 `verification_not_recent` when none)."""
        body: dict[str, Any] = {
            "request_code": code,
            "document_ids": document_ids,
            "channel": channel,
            "consent": True,
            "chat_channel": who.channel,
            "chat_user": who.headers()[CHAT_USER_HEADER],
        }
        if with_verification:
            body["auth"] = "verification"
        return cast(
            SigningSession, await self._call("POST", "/v1/signing-sessions", body=body, headers=who.headers())
        )

    async def resend(self, session_id: str) -> SigningSession:
        path = f"/v1/signing-sessions/{quote(session_id, safe='')}/resend"
        return cast(SigningSession, await self._call("POST", path))

    async def verify(self, session_id: str, otp: str) -> VerifyResult:
        path = f"/v1/signing-sessions/{quote(session_id, safe='')}/verify"
        return cast(VerifyResult, await self._call("POST", path, body={"otp": otp}))


_api: SigningApi | None = None


def get_api() -> SigningApi:
    """The process-wide client, built from the environment on first use."""
    global _api
    if _api is None:
        _api = SigningApi.from_settings(Settings.from_env())
    return _api


def reset_api() -> None:
    """Forget the client (tests point the actions at another service)."""
    global _api
    _api = None
