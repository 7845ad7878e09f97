"""Client of the signing service: request status and documents for the side panel, and the staff SMS."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from common.log_paths import loggable_path
from common.request_code import normalize_request_code

log = logging.getLogger(__name__)
PANEL_DOCUMENT_FIELDS = ("id", "title", "kind", "status", "status_label", "version")


class SigningError(RuntimeError):
    pass


class SigningRefused(SigningError):
    """The service answered and said no (4xx/5xx with its JSON error): `message` is its Vietnamese text."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class SigningClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str, timeout: float = 5) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, path: str) -> Any | None:
        try:
            async with self._session.get(
                self._base + path, headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status == 404:
                    return None
                if resp.status >= 400:
                    raise SigningError(f"dịch vụ ký số trả lỗi {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("signing service %s failed: %s", loggable_path(path), type(exc).__name__)
            raise SigningError("không kết nối được dịch vụ ký số") from exc

    async def notices(self, channel: str, sender_id: str) -> list[dict[str, Any]]:
        """The notices sent (or held, or failed) to this conversation, newest first."""
        query = f"/v1/notifications?chat_channel={quote(channel)}&chat_user={quote(sender_id, safe='')}"
        data = await self._get(query)
        return list((data or {}).get("notices") or [])

    async def request_status(self, code: str) -> dict[str, Any] | None:
        """The request as staff see it (customer name and phone masked), without its documents."""
        normalised = normalize_request_code(code)
        if normalised is None:
            return None
        return await self._get(f"/v1/requests/{quote(normalised)}")

    async def request_info(self, code: str) -> dict[str, Any] | None:
        """The request and its documents (without their file links), or None when the code is unknown."""
        normalised = normalize_request_code(code)
        if normalised is None:
            return None
        request = await self._get(f"/v1/requests/{quote(normalised)}")
        if request is None:
            return None
        documents = await self._get(f"/v1/requests/{quote(normalised)}/documents")
        # Titles and states only: the file links the staff call returns open PDFs that print the
        # customer's ID number, address and phone, and agents never receive them (docs/security.md).
        request["documents"] = [
            {k: d[k] for k in PANEL_DOCUMENT_FIELDS if k in d}
            for d in (documents or {}).get("documents", [])
            if isinstance(d, dict)
        ]
        return request

    async def send_sms(
        self, code: str, text: str, by: str, chat_channel: str, chat_user: str
    ) -> dict[str, Any]:
        """A staff SMS to the request's registered phone (agent_desk/channel_window.py); the
        service checks that the conversation is verified for the request and audits it."""
        normalised = normalize_request_code(code)
        if normalised is None:
            raise SigningRefused(400, "invalid_request_code", "mã yêu cầu không hợp lệ")
        path = f"/v1/requests/{quote(normalised)}/staff-sms"
        body = {"text": text, "by": by, "chat_channel": chat_channel, "chat_user": chat_user}
        try:
            async with self._session.post(
                self._base + path, json=body, headers=self._headers, timeout=self._timeout
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    data = data if isinstance(data, dict) else {}
                    raise SigningRefused(
                        resp.status,
                        str(data.get("error") or resp.status),
                        str(data.get("message") or f"dịch vụ ký số trả lỗi {resp.status}"),
                    )
                return data if isinstance(data, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("signing service staff-sms failed: %s", type(exc).__name__)
            raise SigningError("không kết nối được dịch vụ ký số") from exc
