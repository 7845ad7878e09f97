"""Client of Zalo Notification Service (ZNS): template messages to a phone number, for notices
outside the OA's customer-service window.

`POST {base}/message/template` with the OA access token in the `access_token` header and
`{"phone": "84…", "template_id": …, "template_data": {…}, "tracking_id": …}`; the reply is
`{"error": 0, "message": "Success", "data": {"msg_id": …, "sent_time": …, "quota": {…}}}`.
Templates (and their parameter names) are registered and approved on the ZNS console beforehand.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Literal

from connectors.common.masking import mask_text
from connectors.zalo.api import ZaloApi, ZaloSendError
from connectors.zalo.tokens import TokenRefreshError

logger = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://business.openapi.zalo.me"
TOKEN_ERRORS = {-124, -216, -220}  # access token invalid / expired
RATE_ERRORS = {-32}  # OA over its call rate (a template's daily quota, -1139, is a refusal: SMS)
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
    """ZNS for the OA of `zalo`: its access token (refreshed on -124/-216/-220) and its HTTP session."""

    def __init__(self, base_url: str, zalo: ZaloApi) -> None:
        self._url = base_url.rstrip("/") + "/message/template"
        self._zalo = zalo

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
        tokens = self._zalo.tokens
        refreshed = False
        while True:
            try:
                token = await tokens.access_token()
                # No automatic re-POST: a timed-out template may have been sent (and billed).
                reply = await self._zalo.post_json(self._url, body, {"access_token": token}, retry=False)
            except TokenRefreshError as exc:
                raise ZnsError("auth", None, str(exc)) from exc
            except ZaloSendError as exc:
                kind: ZnsErrorKind = "temporary" if exc.kind == "network" else "refused"
                raise ZnsError(kind, exc.code, exc.message) from exc
            code = _code(reply)
            if code == 0:
                out = reply.get("data")
                return out if isinstance(out, dict) else {}
            if code in TOKEN_ERRORS and not refreshed and tokens.can_refresh:
                refreshed = True
                try:
                    await tokens.refresh(token)
                except TokenRefreshError as exc:
                    raise ZnsError("auth", code, str(exc)) from exc
                continue
            text = mask_text(str(reply.get("message") or ""))[:200]
            kind = "temporary" if code in RATE_ERRORS else "auth" if code in TOKEN_ERRORS else "refused"
            logger.warning("ZNS refused template %s: error %s (%s)", template_id, code, text)
            raise ZnsError(kind, code, text)


def _code(reply: dict[str, Any]) -> int:
    try:
        return int(reply.get("error", 0) or 0)
    except (TypeError, ValueError):
        return -1
