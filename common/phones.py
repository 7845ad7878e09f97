"""Vietnamese phone numbers in one form, so a shared or typed number can be compared with the
registered one (the signing service's contact check, the bot's channel question)."""

from __future__ import annotations

import re
import unicodedata

_NOT_DIGIT = re.compile(r"[^0-9]")


def normalize_phone(raw: str | None) -> str | None:
    """'+84 905 123 456', '84905123456', '0905.123.456' → '0905123456'; None when it is not a VN number."""
    if not raw or len(raw) > 32:
        return None
    text = unicodedata.normalize("NFKC", raw).strip()
    digits = _NOT_DIGIT.sub("", text)
    if digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif digits.startswith("0084"):
        digits = "0" + digits[4:]
    return digits if re.fullmatch(r"0[0-9]{9,10}", digits) else None
