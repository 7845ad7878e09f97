"""Connector-level answers: texts the connectors send without a bot turn.

Customer-facing wording lives in domain.yml. When a customer sends something the bot cannot
read, the connector answers with the response named ``UNSUPPORTED_RESPONSE`` from the loaded
model's domain; if the model has no such response, the turn goes to Rasa as ``/out_of_scope``
so the customer still gets the bot's usual "not understood" answer.

A few answers have no bot turn to fall back on (a message in a Telegram group, the text of Zalo's
request-user-info card). They are taken from the domain too when it has a response of that name,
else from the defaults below: the only customer text in connectors/ code, kept here in one place.
"""

from __future__ import annotations

import random
from typing import Any

UNSUPPORTED_RESPONSE = "utter_unsupported_content"
FALLBACK_INTENT_TEXT = "/out_of_scope"

# Telegram: answered (once per group) to any update from a group, supergroup or channel.
PRIVATE_CHAT_ONLY_RESPONSE = "utter_private_chat_only"
PRIVATE_CHAT_ONLY_TEXT = (
    "Vì lý do bảo mật, trợ lý chỉ trả lời trong cuộc trò chuyện riêng. "
    "Quý khách vui lòng nhắn tin riêng cho trợ lý."
)
# Zalo: the subtitle of the request_user_info card (its title is the button's title); at most 500 chars.
REQUEST_INFO_SUBTITLE = "Chạm vào đây để gửi số điện thoại của Quý khách cho trợ lý."
# Any channel: the bot failed on the customer's message (Rasa or the action server down, a timeout);
# the message went to the agent desk's queue (connectors/common/bot_failures.py). Rasa may be the
# part that is down, so this cannot wait for a bot turn.
BOT_FAILURE_RESPONSE = "utter_bot_failure"
BOT_FAILURE_TEXT = (
    "Dạ, hệ thống trả lời tự động đang gặp sự cố nên chưa xử lý được tin nhắn của anh/chị. "
    "Em đã chuyển tin nhắn tới nhân viên tổng đài, nhân viên sẽ trả lời anh/chị sớm nhất có thể. "
    "Việc gấp anh/chị vui lòng gọi tổng đài 1900 1909 ạ."
)


def domain_response_text(app: Any, name: str, channel: str) -> str | None:
    """A random text variation of response ``name`` for ``channel`` from the agent's domain."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    return domain_text(getattr(agent, "domain", None), name, channel)


def domain_text(domain: Any, name: str, channel: str) -> str | None:
    """A random text variation of response ``name`` for ``channel`` from a loaded domain (or None)."""
    variants = getattr(domain, "responses", {}).get(name) or []
    texts = [
        v["text"]
        for v in variants
        if isinstance(v, dict) and v.get("text") and v.get("channel") in (None, channel)
    ]
    return random.choice(texts) if texts else None


def text(app: Any, name: str, channel: str, default: str) -> str:
    """Response ``name`` of the domain when the model has one, else ``default``."""
    return domain_response_text(app, name, channel) or default
