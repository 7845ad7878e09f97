"""Customer text as the service keeps it: NFC normalisation and input cleaning.

Request codes and folding for matching are contracts shared by every process: `common.request_code`
and `common.folding`.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters except newline and tab are removed from customer text (they break logs and PDFs).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def clean_free_text(text: str) -> str:
    """NFC, no control characters, trimmed lines, at most one blank line in a row."""
    text = _CONTROL.sub("", nfc(text).replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
