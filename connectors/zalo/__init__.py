"""Zalo Official Account channel: register ``connectors.zalo.ZaloInput`` in credentials.yml."""

from __future__ import annotations

from typing import Any

__all__ = ["ZaloInput", "ZaloOutput"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the channel classes need Rasa, which the notifier's environment
    # (Python 3.12, no Rasa) does not have; it only uses connectors.zalo.api/config/zns.
    if name in __all__:
        from connectors.zalo import channel

        return getattr(channel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
