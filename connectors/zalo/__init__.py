"""Zalo Official Account channel: register ``connectors.zalo.ZaloInput`` in credentials.yml."""

from connectors.zalo.channel import ZaloInput, ZaloOutput

__all__ = ["ZaloInput", "ZaloOutput"]
