"""Zalo OA webhook authenticity: ``X-ZEvent-Signature: mac=<sha256 hex>``.

mac = SHA-256(app_id + raw body + timestamp + OA secret key), a plain hash of the joined strings
(not an HMAC), over the exact bytes received (Zalo's Java SDK MacUtils; chatwoot's Zalo inbox).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-ZEvent-Signature"


def compute_mac(app_id: str, raw_body: bytes, timestamp: str, oa_secret_key: str) -> str:
    h = hashlib.sha256()
    h.update(app_id.encode())
    h.update(raw_body)
    h.update(timestamp.encode())
    h.update(oa_secret_key.encode())
    return "mac=" + h.hexdigest()


def verify(
    header: str | None, app_id: str, raw_body: bytes, timestamps: list[str], oa_secret_key: str
) -> bool:
    """Constant-time check of the header against every candidate timestamp (body, header)."""
    if not header:
        return False
    given = header.strip().lower()
    if not given.startswith("mac="):
        given = "mac=" + given
    ok = False
    for ts in timestamps:
        # Evaluate every candidate (no early exit) so timing does not depend on which matched.
        ok |= hmac.compare_digest(given.encode(), compute_mac(app_id, raw_body, ts, oa_secret_key).encode())
    return ok
