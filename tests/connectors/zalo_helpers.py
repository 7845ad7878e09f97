"""Build signed Zalo webhook deliveries the way Zalo does."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from connectors.zalo.signature import compute_mac


def event(
    name: str,
    user_id: str = "6142000000001",
    text: str | None = None,
    msg_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"msg_id": msg_id or uuid.uuid4().hex}
    if text is not None:
        message["text"] = text
    message.update(extra)
    return {
        "app_id": "2553000111",
        "user_id_by_app": "9791000000001",
        "event_name": name,
        "timestamp": str(int(time.time() * 1000)),
        "sender": {"id": user_id},
        "recipient": {"id": "3662000000001"},
        "message": message,
    }


def signed(body: dict[str, Any], app_id: str, oa_secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    mac = compute_mac(app_id, raw, str(body.get("timestamp", "")), oa_secret)
    return raw, {"X-ZEvent-Signature": mac, "Content-Type": "application/json"}
