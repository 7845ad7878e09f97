"""Classify Zalo OA webhook events into what the connector does with them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from connectors.common.customer_files import zalo_file

MAX_TEXT = 2000  # Zalo's own message limit; anything longer is not a real user message
_USER_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

# Content the bot cannot read: answered politely, not sent to NLU.
UNSUPPORTED = {
    "user_send_image": "image",
    "user_send_gif": "gif",
    "user_send_sticker": "sticker",
    "user_send_file": "file",
    "user_send_audio": "audio",
    "user_send_video": "video",
    "user_send_location": "location",
    "user_send_link": "link",
    "user_send_business_card": "business_card",
}

SUBMIT_INFO = "user_submit_info"  # the answer to a request_user_info card

Kind = Literal["text", "unsupported", "follow", "contact", "ignore"]


class BadEvent(ValueError):
    """A known event without the fields it must have."""


@dataclass(frozen=True)
class ZaloEvent:
    kind: Kind
    event_name: str
    user_id: str = ""
    dedupe_key: str = ""
    text: str = ""
    content_type: str = ""
    phone: str | None = None  # kind "contact": the number typed in (or kept) in Zalo's form
    file: dict[str, str] | None = None  # kind "unsupported": an image's or file's URL (customer_files)


def _user(obj: Any) -> str:
    uid = obj.get("id") if isinstance(obj, dict) else None
    uid = str(uid) if isinstance(uid, (str, int)) else ""
    if not _USER_ID.match(uid):
        raise BadEvent("missing or invalid user id")
    return uid


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def submitted_info(body: dict[str, Any]) -> dict[str, Any]:
    """The form of a `user_submit_info` event: at `info`, else `message.info`, else `shared_info`
    (the path is not documented reliably; /work/shared/reference/zalo-oa.md section 2.3)."""
    for candidate in (body.get("info"), _dict(body.get("message")).get("info"), body.get("shared_info")):
        if isinstance(candidate, dict):
            return candidate
    return {}


def _submit_info(body: dict[str, Any]) -> ZaloEvent:
    uid = _user(body.get("sender"))
    phone = submitted_info(body).get("phone")
    phone = str(phone).strip() if isinstance(phone, (str, int)) and not isinstance(phone, bool) else ""
    msg_id = _dict(body.get("message")).get("msg_id")
    if isinstance(msg_id, str) and 0 < len(msg_id) <= 128:
        key = msg_id
    else:
        key = f"{SUBMIT_INFO}:{uid}:{str(body.get('timestamp', ''))[:20]}"
    return ZaloEvent("contact", SUBMIT_INFO, uid, key, phone=phone or None)


def classify(body: Any) -> ZaloEvent:
    """Map a parsed webhook body to an action. Unknown or foreign events are ``ignore``."""
    if not isinstance(body, dict):
        raise BadEvent("event is not a JSON object")
    name = body.get("event_name")
    if not isinstance(name, str) or not name:
        return ZaloEvent("ignore", "")
    if name.startswith("oa_send_"):  # echo of what the OA itself sent: never answer it
        return ZaloEvent("ignore", name)
    if name == "follow":
        uid = _user(body.get("follower"))
        return ZaloEvent("follow", name, uid, f"follow:{uid}:{body.get('timestamp', '')}")
    if name == SUBMIT_INFO:
        return _submit_info(body)
    if name != "user_send_text" and name not in UNSUPPORTED:
        return ZaloEvent("ignore", name)
    uid = _user(body.get("sender"))
    message = body.get("message")
    if not isinstance(message, dict):
        raise BadEvent("missing message")
    msg_id = message.get("msg_id")
    if not isinstance(msg_id, str) or not msg_id or len(msg_id) > 128:
        raise BadEvent("missing msg_id")
    if name == "user_send_text":
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadEvent("empty text")
        return ZaloEvent("text", name, uid, msg_id, text.strip()[:MAX_TEXT])
    return ZaloEvent(
        "unsupported", name, uid, msg_id, content_type=UNSUPPORTED[name], file=zalo_file(name, message)
    )
