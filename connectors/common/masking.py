"""Keep personal data and secrets out of logs."""

from __future__ import annotations

from common.personal_text import mask_phones_and_emails


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
    return mask_phones_and_emails(text)
