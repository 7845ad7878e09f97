"""Vietnamese text helpers: NFC normalisation, diacritic folding and input cleaning."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Control characters except newline and tab are removed from customer text (they break logs and PDFs).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case, diacritic-free, single-spaced form used for matching ("Nguyễn" -> "nguyen")."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", stripped.lower()).strip()


def clean_free_text(text: str) -> str:
    """NFC, no control characters, trimmed lines, at most one blank line in a row."""
    text = _CONTROL.sub("", nfc(text).replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# ASCII classes on purpose: `\d` / str.upper() would let other scripts' digits and letters through.
CODE_RE = re.compile(r"^PC[0-9]{2}[A-Z]{2}[0-9]{7}$")
UNIT_RE = re.compile(r"^PC[0-9]{2}[A-Z]{2}$")


def normalize_request_code(raw: str) -> str | None:
    """Customers type 'pc05tk 0000123' or 'PC05TK-0000123'; None when it cannot be a code."""
    if len(raw) > 40:
        return None
    code = re.sub(r"[\s\-_.]", "", unicodedata.normalize("NFKC", raw)).upper()
    return code if CODE_RE.match(code) else None
