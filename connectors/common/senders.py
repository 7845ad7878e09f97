"""Conversation ids of the chat connectors: `<channel>:<platform id>` (docs/channels.md).

Kept apart from the channel modules (which import Rasa, Sanic and python-telegram-bot) so that
deploy/rest_guard.py can refuse these prefixes on Rasa's REST channel without importing them: a
REST client must not be able to speak as a Zalo or Telegram customer.
"""

from __future__ import annotations

ZALO_SENDER_PREFIX = "zalo:"
TELEGRAM_SENDER_PREFIX = "telegram:"
CHAT_SENDER_PREFIXES = (ZALO_SENDER_PREFIX, TELEGRAM_SENDER_PREFIX)
