"""Build Telegram updates the way the Bot API delivers them."""

from __future__ import annotations

import itertools
import time
from typing import Any

_ids = itertools.count(int(time.time()) % 1_000_000 * 100)


def next_update_id() -> int:
    return next(_ids)


def _chat(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": "An"}


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "An"}


def text_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": _chat(chat_id),
        "from": _user(chat_id),
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id or next_update_id(), "message": message}


def callback_update(chat_id: int, data: str) -> dict[str, Any]:
    return {
        "update_id": next_update_id(),
        "callback_query": {
            "id": f"cq{next_update_id()}",
            "from": _user(chat_id),
            "chat_instance": "ci",
            "data": data,
            "message": {"message_id": 7, "date": int(time.time()), "chat": _chat(chat_id), "text": "Chọn"},
        },
    }


def sticker_update(chat_id: int) -> dict[str, Any]:
    sticker = {
        "file_id": "S",
        "file_unique_id": "s",
        "type": "regular",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
    }
    return {
        "update_id": next_update_id(),
        "message": {
            "message_id": 2,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": _user(chat_id),
            "sticker": sticker,
        },
    }


def contact_update(chat_id: int, phone: str, user_id: int | None) -> dict[str, Any]:
    """A shared contact: `user_id` is the sender's own id when the "share my phone number"
    button was used, another id (or none) for a contact from the address book."""
    contact: dict[str, Any] = {"phone_number": phone, "first_name": "An"}
    if user_id is not None:
        contact["user_id"] = user_id
    return {
        "update_id": next_update_id(),
        "message": {
            "message_id": 3,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": _user(chat_id),
            "contact": contact,
        },
    }


def in_chat(update: dict[str, Any], chat_id: int, chat_type: str) -> dict[str, Any]:
    """The same update sent in a group, supergroup or channel (ids of such chats are negative)."""
    message = update.get("message") or update["callback_query"]["message"]
    message["chat"] = {"id": chat_id, "type": chat_type, "title": "Nhóm khách hàng"}
    return update
