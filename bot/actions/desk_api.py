"""The one typed client of the agent desk's API (agent_desk/service_api.py).

Only one call today: a waiting customer's place in the queue. Bounded by the action server's timeout;
any failure (down, slow, refused token, not JSON) comes back as `DeskUnavailable`, which the action
turns into the plain "still in the queue" answer. Sender ids are never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal, TypedDict, cast
from urllib.parse import quote

import aiohttp

from bot.actions.settings import Settings
from common import request_id
from common.chat_identity import CHAT_USER_HEADER

log = logging.getLogger(__name__)


class QueuePlace(TypedDict):
    status: Literal["waiting", "active", "none"]
    position: int | None
    waiting_total: int
    waited_s: int
    agents_available: int
    expected_wait_s: int | None
    timeout_in_s: int | None


class DeskUnavailable(Exception):
    """The desk did not answer usefully."""


class DeskApi:
    def __init__(self, base_url: str, token: str, timeout_s: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=min(timeout_s, 3.0))  # an answer, not a task

    @classmethod
    def from_settings(cls, settings: Settings) -> DeskApi:
        return cls(settings.desk_url, settings.desk_token, settings.timeout_s)

    async def queue_place(self, sender_id: str) -> QueuePlace:
        url = f"{self._base}/api/queue/position"
        try:
            async with aiohttp.ClientSession(headers=self._headers, timeout=self._timeout) as session:
                # In a header, not the query string: proxies log query strings.
                headers = {CHAT_USER_HEADER: quote(sender_id[:255], safe=""), **request_id.headers()}
                async with session.get(url, headers=headers) as resp:
                    payload = await resp.json(content_type=None) if resp.status == 200 else None
                    if resp.status == 401:
                        log.error("agent desk refused the token (401); check DESK_API_TOKEN")
                    elif resp.status != 200:
                        log.warning("agent desk queue position -> HTTP %s", resp.status)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("agent desk unreachable: %s", type(exc).__name__)
            raise DeskUnavailable(type(exc).__name__) from exc
        if not isinstance(payload, dict) or payload.get("status") not in ("waiting", "active", "none"):
            raise DeskUnavailable("no usable answer")
        return cast(QueuePlace, payload)


_api: DeskApi | None = None


def get_desk_api() -> DeskApi:
    """The process-wide client, built from the environment on first use."""
    global _api
    if _api is None:
        _api = DeskApi.from_settings(Settings.from_env())
    return _api


def reset_desk_api() -> None:
    """Forget the client (tests point the actions at another desk)."""
    global _api
    _api = None
