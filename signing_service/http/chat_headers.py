"""The chat user a call is made for, from the bot's headers (none: a staff call with the service token)."""

from __future__ import annotations

from aiohttp import web

from common.chat_identity import CHAT_CHANNEL_HEADER, CHAT_CHANNELS, CHAT_USER_HEADER, valid_chat_user

from ..errors import ApiError
from ..verification import ChatUser


def chat_user(request: web.Request) -> ChatUser | None:
    """The chat user the bot calls for, or None for a staff call (neither header)."""
    channel = request.headers.get(CHAT_CHANNEL_HEADER)
    user = request.headers.get(CHAT_USER_HEADER)
    if channel is None and user is None:
        return None
    if channel not in CHAT_CHANNELS or user is None or not valid_chat_user(user):
        raise ApiError(400, "invalid_chat_user")
    return ChatUser(channel, user)


def required_chat_user(request: web.Request) -> ChatUser:
    who = chat_user(request)
    if who is None:
        raise ApiError(400, "chat_user_required")
    return who


def staff_only(request: web.Request) -> None:
    """403 `staff_only` for a call made for a chat user: staff endpoints take the service token alone."""
    if chat_user(request) is not None:
        raise ApiError(403, "staff_only")
