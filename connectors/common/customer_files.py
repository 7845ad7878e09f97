"""Images and files customers send (issue 18): the bot reads only text, but while an agent has the
conversation (the bot paused) the message goes to Rasa with a reference to the file in its metadata
(`customer_file`), so the desk's transcript shows it. Zalo gives a URL on its CDN; Telegram a
file_id (the Bot API's getFile resolves it), with the document's name and the caption.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)
METADATA_KEY = "customer_file"
MAX_NAME = 200
MAX_URL = 2000


def _str(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _http(value: Any) -> str:
    url = _str(value, MAX_URL + 1)
    return url if url.startswith(("https://", "http://")) and len(url) <= MAX_URL else ""


def zalo_file(event_name: str, message: dict[str, Any]) -> dict[str, str] | None:
    """`user_send_image` / `user_send_file`: `attachments[0].payload` = {url, thumbnail | name, size}."""
    if event_name not in ("user_send_image", "user_send_file"):
        return None
    attachments = message.get("attachments")
    first = attachments[0] if isinstance(attachments, list) and attachments else None
    payload = first.get("payload") if isinstance(first, dict) else None
    if not isinstance(payload, dict):
        return None
    found = {
        "kind": "image" if event_name == "user_send_image" else "file",
        "url": _http(payload.get("url")),
        "name": _str(payload.get("name"), MAX_NAME),
        "caption": _str(message.get("text"), MAX_NAME),
    }
    return {k: v for k, v in found.items() if v}


def telegram_file(attr: str, message: dict[str, Any]) -> dict[str, str] | None:
    """A photo (the largest size) or a document: its file_id, name and the caption."""
    if attr == "photo":
        sizes = [s for s in message.get("photo") or [] if isinstance(s, dict)]
        best = max(sizes, key=lambda s: int(s.get("file_size") or s.get("width") or 0), default=None)
        kind, item = "image", best
    elif attr == "document":
        kind, item = "file", message.get("document")
    else:
        return None
    if not isinstance(item, dict):
        return None
    found = {
        "kind": kind,
        "file_id": _str(item.get("file_id"), 300),
        "name": _str(item.get("file_name"), MAX_NAME),
        "caption": _str(message.get("caption"), MAX_NAME),
    }
    return {k: v for k, v in found.items() if v}


async def bot_paused(app: Any, sender_id: str) -> bool:
    """Whether Rasa's tracker of the conversation is paused (an agent has it); False when unknown."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return False
    try:
        tracker = await store.retrieve(sender_id)
    except Exception:  # noqa: BLE001 (a store failure: the bot answers as before)
        logger.info("tracker store unreachable: a customer's file is answered as unsupported")
        return False
    return bool(tracker is not None and tracker.is_paused())
