"""One-time codes for signing: generation, hashing, constant-time check, and the policy numbers.

A code is 6 digits from `secrets`, stored only as HMAC-SHA256(server secret, session id | code), valid
5 minutes, used once; 5 wrong tries lock the session; a new code replaces (revokes) the previous one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

CODE_TTL_SECONDS = 300
MAX_WRONG_ATTEMPTS = 5
RESEND_COOLDOWN_SECONDS = 60
# Send caps per request (5 per hour, 10 per day by default) live in Settings: OTP_MAX_SENDS_PER_*.

_FORMAT = re.compile(r"^[0-9]{6}$")  # ASCII only: `\d` would also accept other scripts' digits


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def code_hash(secret: str, session_id: str, code: str) -> str:
    return hmac.new(secret.encode(), f"otp|{session_id}|{code}".encode(), hashlib.sha256).hexdigest()


def matches(secret: str, session_id: str, candidate: str, stored_hash: str | None) -> bool:
    if stored_hash is None:
        return False
    return hmac.compare_digest(code_hash(secret, session_id, candidate), stored_hash)


def clean_candidate(raw: object) -> str | None:
    """Accept "123456", "123 456", "123-456", full-width "１２３４５６"; None when it is not 6 digits."""
    if not isinstance(raw, str) or len(raw) > 20:
        return None
    code = re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", raw))
    return code if _FORMAT.match(code) else None


def new_session_id() -> str:
    return secrets.token_urlsafe(24)
