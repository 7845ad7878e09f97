"""The request-code contract: PC + 2 digits (company) + 2 letters (unit) + 7 digits, e.g. PC05TK0000123.

Customers type codes in lower case, with spaces, dashes or dots ("pc05-tk 0000123"), on phone keyboards
that give full-width letters ("ＰＣ05TK…") or other scripts' digits ("PC05TK٠٠٠٠١٢٣"); every process that
reads a typed code normalises it here, so the NLU, the actions, the connectors and the service agree.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# ASCII classes on purpose: `\d`, `[A-Z]` with IGNORECASE or str.upper() let other scripts through.
# `\Z`, not `$`: `$` also matches before a trailing newline.
REQUEST_CODE_RE: Final = re.compile(r"^PC[0-9]{2}[A-Z]{2}[0-9]{7}\Z")
UNIT_CODE_RE: Final = re.compile(r"^PC[0-9]{2}[A-Z]{2}\Z")
REQUEST_CODE_SAMPLE: Final = "PC05TK0000123"

# A candidate code inside free text: any script's decimal digits, ASCII or full-width letters, one
# separator typed by customers between parts. Each alternative is bounded, so the scan is linear;
# a candidate counts only if `normalize_request_code` accepts it.
_SEP = r"[\s\-._－．＿]?"
_LETTER = r"[A-Za-zＡ-Ｚａ-ｚ]"
REQUEST_CODE_IN_TEXT: Final = re.compile(
    rf"[PpＰｐ][CcＣｃ]{_SEP}\d{{2}}{_SEP}{_LETTER}{{2}}{_SEP}\d(?:{_SEP}\d){{6}}"
)

MAX_CODE_INPUT: Final = 40  # a typed code with separators fits; longer input is not a code
MAX_TEXT_SCAN: Final = 4000  # free text is cut before the scan (a message may be 200k characters)
_SEPARATORS: Final = re.compile(r"[\s\-._]")


def _ascii_digits(text: str) -> str:
    """Full-width forms (ＰＣ０５, －) as ASCII and every Unicode decimal digit (٣, ३) as its ASCII digit.

    Deliberately not NFKC: it also turns ſ, the Kelvin sign, Ⅽ, 𝐏 or ⑩ into ASCII letters and digits.
    Other characters are kept, so a non-ASCII letter still refuses the code."""
    return "".join(_ascii_digit(c) for c in text)


def _ascii_digit(c: str) -> str:
    if c.isascii():
        return c
    if "\uff01" <= c <= "\uff5e":  # the full-width block mirrors ASCII 0x21-0x7e
        return chr(ord(c) - 0xFEE0)
    value = unicodedata.decimal(c, None)
    return c if value is None else str(value)


def _canonical(raw: object, pattern: re.Pattern[str]) -> str | None:
    if not isinstance(raw, str):  # a payload entity may be a number, a list or a dict
        return None
    raw = raw.strip()
    if not raw or len(raw) > MAX_CODE_INPUT:
        return None
    code = _SEPARATORS.sub("", _ascii_digits(raw))
    # Only ASCII is upper-cased: "ı".upper() is "I", and a dotless i is not a unit letter.
    if not code.isascii():
        return None
    code = code.upper()
    return code if pattern.match(code) else None


def normalize_request_code(raw: object) -> str | None:
    """'pc05-tk 0000123', 'ＰＣ05TK0000123', 'PC05TK٠٠٠٠١٢٣' → 'PC05TK0000123'; None when not a code."""
    return _canonical(raw, REQUEST_CODE_RE)


def normalize_unit_code(raw: object) -> str | None:
    """'pc05 tk' → 'PC05TK' (same rules as `normalize_request_code`); None when not a unit code."""
    return _canonical(raw, UNIT_CODE_RE)


def find_request_code(text: object) -> str | None:
    """First well-formed request code inside a free text (its first MAX_TEXT_SCAN characters)."""
    if not isinstance(text, str):
        return None
    for match in REQUEST_CODE_IN_TEXT.finditer(text[:MAX_TEXT_SCAN]):
        code = normalize_request_code(match.group(0))
        if code:
            return code
    return None


def is_request_code(value: object) -> bool:
    """`value` is a code in canonical form, as-is (no normalising): for paths, headers, stored values."""
    return isinstance(value, str) and REQUEST_CODE_RE.match(value) is not None
