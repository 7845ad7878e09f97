"""Client of the Zalo OA Open API: v3 customer-service messages, file uploads and the OAuth refresh."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import aiohttp

from connectors.common.masking import mask_id, mask_text
from connectors.common.ratelimit import RateLimiter
from connectors.zalo.config import ZaloSettings
from connectors.zalo.tokens import TokenManager, TokenRefreshError, TokenStore

logger = logging.getLogger(__name__)

ErrorKind = Literal["token", "window", "rate", "network", "auth", "permanent"]
TOKEN_ERRORS = {-216, -220}  # access token invalid / expired
WINDOW_ERRORS = {-230, -232, -213}  # no interaction within the window / not a follower
RATE_ERRORS = {-32}


def error_kind(code: int) -> ErrorKind:
    if code in TOKEN_ERRORS:
        return "token"
    if code in WINDOW_ERRORS:
        return "window"
    if code in RATE_ERRORS:
        return "rate"
    return "permanent"


class ZaloSendError(Exception):
    def __init__(self, kind: ErrorKind, code: int | None, message: str) -> None:
        super().__init__(f"{kind}: {code} {message}")
        self.kind = kind
        self.code = code
        self.message = message


class ZaloApi:
    """Sends messages; refreshes the token on -216/-220 and retries once; backs off on errors."""

    def __init__(
        self,
        settings: ZaloSettings,
        retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0),
        rate_retry_delays: tuple[float, ...] = (1.0, 3.0),
    ) -> None:
        self.settings = settings
        self._retry_delays = retry_delays
        self._rate_retry_delays = rate_retry_delays
        self._session: aiohttp.ClientSession | None = None
        self._limiter = RateLimiter(settings.send_rate, max(1.0, settings.send_rate))
        self.tokens = TokenManager(
            TokenStore(settings.token_store_path),
            settings.access_token,
            settings.refresh_token,
            self._oauth_refresh if settings.can_refresh else None,
        )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_message(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """POST /v3.0/oa/message/cs; returns ``data`` or raises ZaloSendError."""
        body = {"recipient": {"user_id": user_id}, "message": message}
        url = f"{self.settings.api_base_url}/v3.0/oa/message/cs"
        return await self._authorised(
            lambda token: self._post_json(url, body, {"access_token": token}),
            f"a message to {mask_id(user_id)}",
        )

    async def upload_file(self, filename: str, data: bytes) -> str:
        """POST /v2.0/oa/upload/file (multipart field `file`, a PDF); returns the file token that a
        file message sends, or raises ZaloSendError."""
        url = f"{self.settings.api_base_url}/v2.0/oa/upload/file"
        found = await self._authorised(
            lambda token: self._post(url, {"access_token": token}, upload=(filename, data)),
            f"an upload of {len(data)} bytes",
        )
        token = found.get("token")
        if not isinstance(token, str) or not token:
            raise ZaloSendError("permanent", None, "upload reply without a file token")
        return token

    async def upload_image(self, filename: str, data: bytes, content_type: str = "image/jpeg") -> str:
        """POST /v2.0/oa/upload/image (multipart field `file`, a JPEG or PNG of at most 1 MB); returns
        the attachment id that a media message sends, or raises ZaloSendError."""
        url = f"{self.settings.api_base_url}/v2.0/oa/upload/image"
        found = await self._authorised(
            lambda token: self._post(
                url, {"access_token": token}, upload=(filename, data), mime=content_type
            ),
            f"an image upload of {len(data)} bytes",
        )
        attachment_id = found.get("attachment_id")
        if not isinstance(attachment_id, str) or not attachment_id:
            raise ZaloSendError("permanent", None, "upload reply without an attachment id")
        return attachment_id

    async def _authorised(
        self, call: Callable[[str], Awaitable[dict[str, Any]]], what: str
    ) -> dict[str, Any]:
        """One OA API call with the access token: refreshed and retried once on -216/-220, slowed
        down on -32; returns ``data`` or raises ZaloSendError."""
        refreshed = False
        rate_retries = list(self._rate_retry_delays)
        while True:
            await self._limiter.acquire()
            token = await self._token()
            reply = await call(token)
            code = _error_code(reply)
            if code == 0:
                data = reply.get("data")
                return data if isinstance(data, dict) else {}
            kind = error_kind(code)
            text = mask_text(str(reply.get("message") or ""))[:200]
            if kind == "token" and not refreshed and self.tokens.can_refresh:
                refreshed = True
                await self._refresh(token)
                continue
            if kind == "rate" and rate_retries:
                await asyncio.sleep(rate_retries.pop(0))
                continue
            logger.warning("Zalo refused %s: error %s (%s)", what, code, text)
            raise ZaloSendError(kind, code, text)

    async def _token(self) -> str:
        try:
            return await self.tokens.access_token()
        except TokenRefreshError as exc:
            raise ZaloSendError("auth", None, str(exc)) from exc

    async def _refresh(self, failed: str) -> None:
        try:
            await self.tokens.refresh(failed)
        except TokenRefreshError as exc:
            logger.error("Zalo token refresh failed; an OA admin must authorise the app again: %s", exc)
            raise ZaloSendError("auth", None, str(exc)) from exc

    async def _oauth_refresh(self, refresh_token: str) -> dict[str, Any]:
        url = f"{self.settings.oauth_base_url}/v4/oa/access_token"
        form = {"refresh_token": refresh_token, "app_id": self.settings.app_id, "grant_type": "refresh_token"}
        try:
            return await self._post(url, {"secret_key": self.settings.app_secret or ""}, data=form)
        except ZaloSendError as exc:
            raise TokenRefreshError(str(exc)) from exc

    async def _post_json(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        return await self._post(url, headers, json_body=body)

    async def post_json(
        self, url: str, body: dict[str, Any], headers: dict[str, str], retry: bool = True
    ) -> dict[str, Any]:
        """The JSON reply of a POST to another Zalo product with this OA's session (ZNS); network
        errors and 5xx retried (unless `retry` is False), then ZaloSendError("network")."""
        return await self._post(url, headers, json_body=body, retry=retry)

    async def _post(
        self,
        url: str,
        headers: dict[str, str],
        json_body: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        retry: bool = True,
        upload: tuple[str, bytes] | None = None,
        mime: str = "application/pdf",
    ) -> dict[str, Any]:
        """POST with retries on network errors and 5xx; returns the JSON reply (any 2xx/4xx).
        `upload` (filename, bytes) is sent as the multipart field `file`."""
        delays = list(self._retry_delays) if retry else []
        while True:
            form: aiohttp.FormData | dict[str, str] | None = data
            if upload is not None:  # a FormData is consumed by a request: one per try
                form = aiohttp.FormData()
                form.add_field("file", upload[1], filename=upload[0], content_type=mime)
            try:
                async with self._http().post(url, json=json_body, data=form, headers=headers) as resp:
                    if resp.status >= 500:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                    raw = await resp.read()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise ZaloSendError("permanent", None, f"non-JSON reply (HTTP {resp.status})") from None
                if not isinstance(parsed, dict):
                    raise ZaloSendError("permanent", None, f"unexpected reply (HTTP {resp.status})")
                return parsed
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not delays:
                    raise ZaloSendError("network", None, type(exc).__name__) from exc
                delay = delays.pop(0)
                logger.info("Zalo API unreachable (%s); retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)


def _error_code(reply: dict[str, Any]) -> int:
    try:
        return int(reply.get("error", 0) or 0)
    except (TypeError, ValueError):
        return -1
