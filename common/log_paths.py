"""A URL path as a client's log line may show it (one definition for every process's clients).

The signing service's paths carry request codes, signing-session and verification ids and
candidate refs (`/v1/requests/PC05TK0000123/documents`), which must never reach a log. Only the
route's literal words and short numbers are kept; every other segment becomes "…", so a line
still says which call failed.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"^(v[0-9]|[a-z][a-z-]{0,19})$")  # route words: v1, requests, verify
_NUMBER = re.compile(r"^[0-9]{1,9}$")  # desk conversation ids and the like


def loggable_path(path: str) -> str:
    """`path` without its query string, each segment that is not a route word or a short number
    replaced by "…" ("/v1/requests/PC05TK0000123/documents" -> "/v1/requests/…/documents")."""
    bare = path.split("?", 1)[0].split("#", 1)[0]
    return "/".join(s if not s or _WORD.match(s) or _NUMBER.match(s) else "…" for s in bare.split("/"))
