"""Telegram channel: register ``connectors.telegram.TelegramInput`` in credentials.yml."""

from __future__ import annotations

from typing import Any

__all__ = ["TelegramInput", "TelegramOutput"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the channel classes need Rasa, which the notifier's environment
    # (Python 3.12, no Rasa) does not have; it only uses connectors.telegram.config.
    if name == "TelegramInput":
        from connectors.telegram.channel import TelegramInput

        return TelegramInput
    if name == "TelegramOutput":
        from connectors.telegram.output import TelegramOutput

        return TelegramOutput
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
