"""Masking of personal data shown to a chat user who has not proved who they are."""

from __future__ import annotations


def mask_name(name: str) -> str:
    """Family name kept, other words as initial + stars: "Nguyễn Văn An" -> "Nguyễn V** A*"."""
    words = name.split()
    if len(words) <= 1:
        return (words[0][0] + "*" * (len(words[0]) - 1)) if words else ""
    return " ".join([words[0]] + [w[0] + "*" * (len(w) - 1) for w in words[1:]])


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    local, domain = email.rsplit("@", 1)
    return f"{local[0]}{'*' * max(len(local) - 1, 1)}@{domain}"


def mask_address(address: str) -> str:
    """Hide the house number and street, keep ward/district/province so candidates can be told apart."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    if len(parts) <= 1:
        return "***"
    return ", ".join(["***"] + parts[1:])


def mask_destination(channel: str, value: str) -> str:
    return (mask_phone(value) if channel == "sms" else mask_email(value)) or "***"
