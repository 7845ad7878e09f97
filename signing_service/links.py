"""Expiring document links: HMAC-SHA256 over (document id, variant, expiry)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode

VARIANTS = ("original", "signed")


def _mac(secret: str, doc_id: int, variant: str, expires: int) -> str:
    msg = f"document-link|{doc_id}|{variant}|{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def make_link(base_url: str, secret: str, doc_id: int, variant: str, expires: int) -> str:
    query = urlencode({"variant": variant, "expires": expires, "sig": _mac(secret, doc_id, variant, expires)})
    return f"{base_url}/v1/documents/{doc_id}/file?{query}"


def check_link(
    secret: str, doc_id: int, variant: str, expires_raw: str, sig: str, now: datetime
) -> str | None:
    """None when the link is good, else why not: "invalid" or "expired" (checked after the MAC)."""
    if variant not in VARIANTS or not expires_raw.isdigit() or len(expires_raw) > 12 or len(sig) != 64:
        return "invalid"
    expires = int(expires_raw)
    if not hmac.compare_digest(_mac(secret, doc_id, variant, expires), sig):
        return "invalid"
    if now.timestamp() > expires:
        return "expired"
    return None
