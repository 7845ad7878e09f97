"""Keep personal data and secrets out of logs."""

from __future__ import annotations

import re

_PHONE = re.compile(r"(?<!\d)(\+?84|0)(\d{2})\d{4,6}(\d{2,3})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


def mask_id(value: object) -> str:
    """Platform user/chat ids: keep the last 3 characters, enough to correlate log lines."""
    s = str(value)
    if len(s) <= 3:
        return "***"
    prefix, _, raw = s.rpartition(":")
    head = f"{prefix}:" if prefix else ""
    return f"{head}***{raw[-3:]}"


def mask_text(text: str) -> str:
    """Mask phone numbers and e-mail addresses inside free text (error messages, payloads)."""
    text = _PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(3)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
