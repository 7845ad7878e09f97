"""The one client of the Rasa HTTP API (server started with --enable-api --auth-token), used by the
desk and the notifier."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


def _route(path: str) -> str:
    """The path as a route, for logs: `/conversations/<id>/tracker` (sender ids are chat ids)."""
    return re.sub(r"^/conversations/[^/?]+", "/conversations/<id>", path.split("?")[0])


class RasaError(RuntimeError):
    """Rasa could not be reached or refused the call (message is safe to show to an agent)."""


class RasaClient:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, token: str, timeout: float = 30
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(
        self, method: str, path: str, params: dict[str, str] | None = None, json: Any = None
    ) -> Any:
        # The token travels as ?token= (Rasa's auth scheme); it is never logged.
        query = {**(params or {}), "token": self._token}
        try:
            async with self._session.request(
                method, self._base + path, params=query, json=json, timeout=self._timeout
            ) as resp:
                if resp.status >= 400:
                    # Neither the conversation id nor the body (it may quote the customer) is logged.
                    log.warning("rasa %s %s -> %s", method, _route(path), resp.status)
                    raise RasaError(f"Rasa trả lỗi {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("rasa %s %s failed: %s", method, _route(path), type(exc).__name__)
            raise RasaError("Không kết nối được tới Rasa") from exc

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        from urllib.parse import quote

        return await self._call(
            "GET", f"/conversations/{quote(sender_id, safe='')}/tracker", {"include_events": "ALL"}
        )

    async def last_user_message_at(self, sender_id: str) -> float | None:
        """When the customer last wrote (epoch seconds), from the conversation's events; None if never.

        The notifier's Zalo window: a customer-service message is allowed for a while after it."""
        from urllib.parse import quote

        tracker = await self._call(
            "GET", f"/conversations/{quote(sender_id, safe='')}/tracker", {"include_events": "AFTER_RESTART"}
        )
        events = tracker.get("events") if isinstance(tracker, dict) else None
        for event in reversed(events or []):
            if isinstance(event, dict) and event.get("event") == "user":
                ts = event.get("timestamp")
                return float(ts) if isinstance(ts, (int, float)) else None
        return None

    async def append_events(
        self, sender_id: str, events: list[dict[str, Any]], push: bool = True
    ) -> dict[str, Any]:
        """Append events; with push=True, `bot` events also go out on the customer's latest channel."""
        from urllib.parse import quote

        params = {"include_events": "NONE"}
        if push:
            params.update({"execute_side_effects": "true", "output_channel": "latest"})
        return await self._call(
            "POST", f"/conversations/{quote(sender_id, safe='')}/tracker/events", params, json=events
        )

    async def trigger_intent(
        self, sender_id: str, intent: str, entities: list[dict[str, Any]] | dict[str, Any]
    ) -> dict[str, Any]:
        """Run the bot on `intent` as if the customer had just sent it; its answer goes out on the
        customer's latest channel."""
        from urllib.parse import quote

        return await self._call(
            "POST",
            f"/conversations/{quote(sender_id, safe='')}/trigger_intent",
            {"output_channel": "latest", "include_events": "NONE"},
            json={"name": intent, "entities": entities},
        )

    async def rest_message(self, sender_id: str, text: str) -> list[dict[str, Any]]:
        """Send a customer message through the REST channel (the /demo page's proxy).

        With REST_CHANNEL_TOKEN set, Rasa's REST channel requires it (deploy/rest_guard.py)."""
        token = os.environ.get("REST_CHANNEL_TOKEN", "").strip()
        try:
            async with self._session.post(
                self._base + "/webhooks/rest/webhook",
                json={"sender": sender_id, "message": text},
                headers={"Authorization": f"Bearer {token}"} if token else None,
                timeout=self._timeout,
            ) as resp:
                if resp.status >= 400:
                    raise RasaError(f"Rasa trả lỗi {resp.status}")
                data = await resp.json(content_type=None)
                return data if isinstance(data, list) else []
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RasaError("Không kết nối được tới Rasa") from exc
