"""Expiring document links: HMAC-SHA256 over (document id, version, variant, expiry).

The version makes a revised draft invalidate every link to the older one (a link is a copy of one
version, not a door to whatever the document becomes).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import urlencode

VARIANTS = ("original", "signed")


def _mac(secret: str, doc_id: int, version: int, variant: str, expires: int) -> str:
    msg = f"document-link|{doc_id}|{version}|{variant}|{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def make_link(base_url: str, secret: str, doc_id: int, variant: str, expires: int, version: int = 1) -> str:
    mac = _mac(secret, doc_id, version, variant, expires)
    query = urlencode({"variant": variant, "v": version, "expires": expires, "sig": mac})
    return f"{base_url}/v1/documents/{doc_id}/file?{query}"


def _ascii_int(raw: str, max_len: int) -> int | None:
    # str.isdigit() accepts "²" and "٣", which int() then refuses: ASCII digits only.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= max_len else None


def check_link(
    secret: str,
    doc_id: int,
    variant: str,
    expires_raw: str,
    sig: str,
    now: datetime,
    version_raw: str = "1",
    current_version: int | None = None,
) -> str | None:
    """None when the link is good, else why not: "invalid", "expired" or "superseded" (after the MAC)."""
    expires = _ascii_int(expires_raw, 12)
    version = _ascii_int(version_raw, 6)
    if variant not in VARIANTS or expires is None or version is None or len(sig) != 64:
        return "invalid"
    if not hmac.compare_digest(_mac(secret, doc_id, version, variant, expires), sig):
        return "invalid"
    if now.timestamp() > expires:
        return "expired"
    if current_version is not None and current_version != version:
        return "superseded"
    return None


def _session_mac(secret: str, session_id: str, expires: int) -> str:
    msg = f"certificate-link|{session_id}|{expires}".encode()
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def make_certificate_link(base_url: str, secret: str, session_id: str, expires: int) -> str:
    """An expiring link to a signed session's certificate, for the customer's chat (no token)."""
    query = urlencode({"expires": expires, "sig": _session_mac(secret, session_id, expires)})
    return f"{base_url}/v1/signing-sessions/{session_id}/certificate/file?{query}"


def check_certificate_link(
    secret: str, session_id: str, expires_raw: str, sig: str, now: datetime
) -> str | None:
    """None when the link is good, else "invalid" or "expired"."""
    expires = _ascii_int(expires_raw, 12)
    if expires is None or len(sig) != 64:
        return "invalid"
    if not hmac.compare_digest(_session_mac(secret, session_id, expires), sig):
        return "invalid"
    if now.timestamp() > expires:
        return "expired"
    return None
