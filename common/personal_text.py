"""Personal data inside free text (what customers and agents type): phone numbers, e-mail addresses,
national ID numbers and one-time codes are masked wherever such text is shown to staff or logged.

One definition for every process: the channels' logs and the agent desk's transcripts, previews and
notes use it alike.
"""

from __future__ import annotations

import re

# Vietnamese mobile and landline numbers, with or without +84/84, spaces or dots inside.
_PHONE = re.compile(r"(?<![\dA-Za-z])(\+?84|0)[\s.]?(\d{2})(?:[\s.]?\d){4,6}?[\s.]?(\d{2,3})(?![\d])")
# The local part may only start where a run of its characters starts: without the lookbehind every
# position of a long run is tried again (quadratic; a 200,000-character message took minutes).
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{0,63}@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,})"
)
# National ID numbers (CCCD 12 digits, old CMND 9 digits) not already taken as phone numbers.
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])(\d{9}|\d{12})(?!\d)")
# A one-time code as the bot accepts it (bot/actions/otp_input.py): six digits, maybe typed in
# groups with spaces, dots or dashes ("123 456", "12-34-56", "1 2 3 4 5 6", "ma123456").
OTP_DIGITS = r"\d(?:[\s.\-]?\d){5}"
OTP_IN_TEXT = re.compile(rf"(?<!\d){OTP_DIGITS}(?!\d)")
# Masked: whatever the bot would take as a code, except where it reads as an amount of money
# ("350.000 đồng", "1.250.000": groups of three after a dot), which agents need.
_OTP = re.compile(rf"(?<!\d)(?<!\d[.,]){OTP_DIGITS}(?!\d|[.,]\d)")
_MONEY = re.compile(r"\d{3}\.\d{3}")


def mask_phones_and_emails(text: str) -> str:
    text = _PHONE.sub(lambda m: f"{m.group(1)}{m.group(2)}****{m.group(3)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


MAX_TEXT = 8000  # longer texts are cut first: what staff see is bounded anyway


def mask_personal(text: str) -> str:
    """Phones (0905****456), e-mails (a***@example.com), ID numbers and six-digit codes (******);
    at most MAX_TEXT characters of `text` are kept."""
    text = mask_phones_and_emails(text[:MAX_TEXT])
    text = _ID_NUMBER.sub(lambda m: "*" * (len(m.group(1)) - 3) + m.group(1)[-3:], text)
    return mask_codes(text)


def mask_codes(text: str, replacement: str = "******") -> str:
    """One-time codes in `text` replaced (amounts of money written 350.000 kept)."""
    return _OTP.sub(lambda m: m.group(0) if _MONEY.fullmatch(m.group(0)) else replacement, text)
