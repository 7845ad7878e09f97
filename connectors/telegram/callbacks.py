"""Fit Rasa button payloads into Telegram's 64-byte ``callback_data``."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

LIMIT = 64
PREFIX = "cb:"


class CallbackPayloads:
    """Short payloads travel as-is; longer ones as ``cb:<hash>``, resolved from a bounded map.

    The map is in memory: a button of a long payload pressed after a restart resolves to nothing
    and the customer is asked again by the bot's next turn. Payloads of this bot fit in 64 bytes.
    """

    def __init__(self, max_size: int = 50_000) -> None:
        self._max = max_size
        self._map: OrderedDict[str, str] = OrderedDict()

    def encode(self, payload: str) -> str:
        if len(payload.encode()) <= LIMIT and not payload.startswith(PREFIX):
            return payload
        key = PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]
        self._map[key] = payload
        self._map.move_to_end(key)
        while len(self._map) > self._max:
            self._map.popitem(last=False)
        return key

    def decode(self, data: str) -> str | None:
        if data.startswith(PREFIX):
            return self._map.get(data)
        return data
