"""Who is chatting, as the bot tells the signing service on every customer-scoped call.

The bot sends the Rasa input channel and sender id in these headers; the signing service lets
documents, contacts, amendments and signing through only for a chat user verified for the request.
A call without them is a staff call (the desk), made with the service token.
"""

from __future__ import annotations

CHAT_CHANNEL_HEADER = "X-Chat-Channel"
CHAT_USER_HEADER = "X-Chat-User"
# The chat channels a customer can reach the bot on (Rasa input channel names), plus the desk's web chat.
CHAT_CHANNELS = frozenset({"rest", "zalo", "telegram", "web"})
MAX_CHAT_USER = 128


def valid_chat_user(value: str) -> bool:
    return 0 < len(value) <= MAX_CHAT_USER and value.isascii() and value.isprintable()
