"""Client of Zalo Notification Service (ZNS): template messages to a phone number, for notices
outside the OA's customer-service window.

`POST {base}/message/template` with the OA access token in the `access_token` header and
`{"phone": "84…", "template_id": …, "template_data": {…}, "tracking_id": …}`; the reply is
`{"error": 0, "message": "Success", "data": {"msg_id": …, "sent_time": …, "quota": {…}}}`.
Templates (and their parameter names) are registered and approved on the ZNS console beforehand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Literal

import aiohttp

from connectors.common.masking import mask_text
from connectors.zalo.tokens import TokenManager, TokenRefreshError

logger = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://business.openapi.zalo.me"
TOKEN_ERRORS = {-124, -216, -220}  # access token invalid / expired
RATE_ERRORS = {-32, -1139}  # OA over its call rate / daily quota of the template
_PHONE = re.compile(r"^(?:\+?84|0)(\d{9,10})$")
ZnsErrorKind = Literal["temporary", "refused", "auth"]


class ZnsError(Exception):
    def __init__(self, kind: ZnsErrorKind, code: int | None, message: str) -> None:
        super().__init__(f"{kind}: {code} {message}")
        self.kind = kind
        self.code = code


def zns_phone(phone: str) -> str | None:
    """`0905123456` / `+84905123456` -> `84905123456` (the form ZNS wants); None if not a VN mobile."""
    m = _PHONE.match(re.sub(r"[\s.-]", "", phone))
    return f"84{m.group(1)}" if m else None


class ZnsApi:
    def __init__(
        self,
        base_url: str,
        tokens: TokenManager,
        timeout: float = 10.0,
        retry_delays: tuple[float, ...] = (0.5, 1.0),
    ) -> None:
        self._url = base_url.rstrip("/") + "/message/template"
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry_delays = retry_delays
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_template(
        self, phone: str, template_id: str, data: dict[str, str], tracking_id: str
    ) -> dict[str, Any]:
        """Returns `data` of the reply; raises ZnsError (temporary: retry later; refused: use another
        way; auth: an OA admin must authorise the app again)."""
        number = zns_phone(phone)
        if number is None:
            raise ZnsError("refused", None, "not a Vietnamese mobile number")
        body = {
            "phone": number,
            "template_id": template_id,
            "template_data": data,
            "tracking_id": tracking_id,
        }
        refreshed = False
        while True:
            token = await self._token()
            reply = await self._post(body, token)
            code = _code(reply)
            if code == 0:
                out = reply.get("data")
                return out if isinstance(out, dict) else {}
            if code in TOKEN_ERRORS and not refreshed and self._tokens.can_refresh:
                refreshed = True
                try:
                    await self._tokens.refresh(token)
                except TokenRefreshError as exc:
                    raise ZnsError("auth", code, str(exc)) from exc
                continue
            text = mask_text(str(reply.get("message") or ""))[:200]
            kind: ZnsErrorKind = (
                "temporary" if code in RATE_ERRORS else "auth" if code in TOKEN_ERRORS else "refused"
            )
            logger.warning("ZNS refused template %s: error %s (%s)", template_id, code, text)
            raise ZnsError(kind, code, text)

    async def _token(self) -> str:
        try:
            return await self._tokens.access_token()
        except TokenRefreshError as exc:
            raise ZnsError("auth", None, str(exc)) from exc

    async def _post(self, body: dict[str, Any], token: str) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        delays = list(self._retry_delays)
        while True:
            try:
                async with self._session.post(
                    self._url, json=body, headers={"access_token": token, "Content-Type": "application/json"}
                ) as resp:
                    if resp.status >= 500 or resp.status == 429:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                    raw = await resp.read()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise ZnsError("refused", None, f"non-JSON reply (HTTP {resp.status})") from None
                if not isinstance(parsed, dict):
                    raise ZnsError("refused", None, f"unexpected reply (HTTP {resp.status})")
                return parsed
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if not delays:
                    raise ZnsError("temporary", None, type(exc).__name__) from exc
                await asyncio.sleep(delays.pop(0))


def _code(reply: dict[str, Any]) -> int:
    try:
        return int(reply.get("error", 0) or 0)
    except (TypeError, ValueError):
        return -1
