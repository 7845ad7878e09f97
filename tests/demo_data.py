"""Reads of a test stack's signing database and outbox shared by the test helpers and the journey replay."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

# The README's demo request: many tests read it, none may sign it.
RESERVED = "PC05TK0000123"


def codes_awaiting(db: Path, documents: int) -> list[str]:
    """Generated demo requests with exactly `documents` drafts awaiting signature."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select r.code from documents d join requests r on r.id = d.request_id "
            "where d.status = 'awaiting_signature' group by r.code having count(*) = ? order by r.code",
            (documents,),
        ).fetchall()
    return [r[0] for r in rows if r[0] != RESERVED]


def sms_contact(db: Path, code: str) -> str | None:
    """The full registered phone of a request (the test plays the customer who owns it)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "select c.value from contacts c join requests r on r.id = c.request_id "
            "where r.code = ? and c.channel = 'sms'",
            (code,),
        ).fetchone()
    return str(row[0]) if row else None


def outbox_messages(outbox: Path, to: str | None = None) -> list[dict[str, Any]]:
    """The development outbox's messages (SMS and e-mail), oldest first, optionally to one destination."""
    if not outbox.exists():
        return []
    messages = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [m for m in messages if to is None or m.get("to") == to]


def last_code(outbox: Path, to: str | None = None) -> str | None:
    """The six-digit code of the latest outbox message (optionally to one destination)."""
    for msg in reversed(outbox_messages(outbox, to)):
        match = re.search(r"(?<!\d)(\d{6})(?!\d)", msg.get("text", ""))
        if match:
            return match.group(1)
    return None
