"""Who is chatting, as the bot tells the signing service on every customer-scoped call.

The bot sends the Rasa input channel and sender id in these headers; the signing service lets
documents, contacts, amendments and signing through only for a chat user verified for the request.
A call without them is a staff call (the desk), made with the service token.
"""

from __future__ import annotations

from typing import Final

CHAT_CHANNEL_HEADER: Final = "X-Chat-Channel"
CHAT_USER_HEADER: Final = "X-Chat-User"
# The conversation (Rasa sender id) a call is made for, recorded with what the call changes.
CONVERSATION_HEADER: Final = "X-Conversation-Id"
MAX_CONVERSATION_ID: Final = 200  # longer values are cut, not refused (it is a log label)

# The chat channels a customer can reach the bot on (Rasa input channel names): the REST channel, the
# connectors, and the desk's web chat.
CHAT_CHANNELS: Final = frozenset({"rest", "zalo", "telegram", "web"})
# An agent acting for the customer on the desk: may be recorded on a signing session or an amendment,
# never sent by the bot as a chat channel.
DESK_CHANNEL: Final = "desk"
SESSION_CHANNELS: Final = CHAT_CHANNELS | {DESK_CHANNEL}
# Rasa input channels that are not customer channels, and what the bot reports them as. Rasa's own
# channels (socketio web widget, cmdline `rasa shell`, callback) all reach the bot from a web page or
# a terminal, so the service sees them as the REST web demo; anything unknown is also "rest".
DEFAULT_CHAT_CHANNEL: Final = "rest"
# How a customer text names each channel ("đã được ký qua Zalo"): never the technical name.
CHAT_CHANNEL_LABELS: Final = {
    "telegram": "Telegram",
    "zalo": "Zalo",
    "web": "trang web",
    "rest": "trang web",
    DESK_CHANNEL: "tổng đài",
}


def chat_channel_label(channel: str | None) -> str:
    """The customer's name for a session's chat channel; an unknown one reads as the web chat."""
    return CHAT_CHANNEL_LABELS.get(channel or "", CHAT_CHANNEL_LABELS[DEFAULT_CHAT_CHANNEL])


MAX_CHAT_USER: Final = 128


def chat_channel_of(input_channel: str | None) -> str:
    """The chat channel the signing service accepts for a Rasa input channel name (the one place a
    non-customer channel such as `socketio` or `cmdline` is mapped): one of CHAT_CHANNELS."""
    name = (input_channel or "").strip().lower()
    return name if name in CHAT_CHANNELS else DEFAULT_CHAT_CHANNEL


def valid_chat_user(value: str) -> bool:
    return 0 < len(value) <= MAX_CHAT_USER and value.isascii() and value.isprintable()
