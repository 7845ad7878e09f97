"""The request-code contract: PC + 2 digits (company) + 2 letters (unit) + 7 digits, e.g. PC05TK0000123.

Customers type codes in lower case, with spaces, dashes or dots ("pc05-tk 0000123"); every process
that reads a typed code normalises it here, so the NLU, the actions and the service agree.
"""

from __future__ import annotations

import re
from typing import Any, Final

REQUEST_CODE_RE: Final = re.compile(r"^PC\d{2}[A-Z]{2}\d{7}$")
# A code inside free text: unit code + 7 digits, separators typed by customers allowed.
REQUEST_CODE_IN_TEXT: Final = re.compile(
    r"pc[\s\-.]?\d{2}[\s\-.]?[a-z]{2}[\s\-.]?\d(?:[\s\-.]?\d){6}", re.IGNORECASE
)


def normalize_request_code(raw: Any) -> str | None:
    """'pc05-tk 0000123' → 'PC05TK0000123'; None when it cannot be a request code."""
    if not raw or not isinstance(raw, str):  # a payload entity may be a number or a dict
        return None
    code = re.sub(r"[\s\-._]", "", raw.strip()[:40]).upper()
    return code if REQUEST_CODE_RE.match(code) else None


def find_request_code(text: str | None) -> str | None:
    """First well-formed request code inside a free text."""
    match = REQUEST_CODE_IN_TEXT.search(text if isinstance(text, str) else "")
    return normalize_request_code(match.group(0)) if match else None
