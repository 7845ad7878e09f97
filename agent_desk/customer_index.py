"""What search knows of a conversation's customer, and the background task that learns it.

The desk keeps no personal data in clear. For a conversation with a request code it asks the
signing service for the request (`GET /v1/requests/{code}`), which shows staff the customer masked
exactly as the portal does (signing_service/masking.py): "Nguyễn V** A*" and "090****567". The
handoff row keeps those masked forms to show in results, plus two search keys derived from them:

- the name key " nguyen v3 a2 ": the family name folded in full, every other word as its initial
  and its length (all a mask reveals), padded with spaces so a word matches as " word ";
- the phone tail "567", the three last digits (indexed).

`customer_code` records which request code they were read for, so a row whose code is new or
changed is looked up again, and a row looked up once is never asked for twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_desk import db
from agent_desk.signing_client import SigningClient, SigningError
from common.folding import fold

log = logging.getLogger(__name__)

BATCH = 20  # look-ups per round
BURST_PAUSE = 0.5  # seconds between full rounds while older rows are back-filled
MAX_BACKOFF = 300.0  # seconds between tries while the signing service fails
MAX_NAME_WORDS = 8
PHONE_MASKED_RE = re.compile(r"^[0-9]{3}\*+[0-9]{3}$")


def masked_token(word: str) -> str:
    """A folded word as a mask shows it: its initial and its length ("van" -> "v3")."""
    return f"{word[0]}{len(word)}"


def name_key(masked_name: str | None) -> str | None:
    """ "Nguyễn V** A*" -> " nguyen v3 a2 "; None when nothing in it can be searched."""
    words: list[str] = []
    for word in fold(masked_name or "").split()[:MAX_NAME_WORDS]:
        if "*" in word:
            initial, stars = word[0], word[1:]
            if initial.isascii() and initial.isalpha() and stars == "*" * len(stars):
                words.append(masked_token(initial + stars))
        elif word.isascii() and word.isalpha():
            words.append(word)
    return f" {' '.join(words)} " if words else None


def mask_phone(digits: str) -> str:
    """The signing service's phone mask (first three and last three digits), for a typed number."""
    return digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


def customer_fields(status: dict[str, Any] | None) -> dict[str, str | None]:
    """The columns search keeps, from the signing service's answer for a request (None: unknown)."""
    customer = (status or {}).get("customer")
    customer = customer if isinstance(customer, dict) else {}
    name = customer.get("name_masked")
    name = name.strip()[:100] if isinstance(name, str) and name.strip() else None
    phone = customer.get("phone_masked")
    phone = phone if isinstance(phone, str) and PHONE_MASKED_RE.match(phone) and len(phone) <= 20 else None
    return {
        "customer_name_masked": name,
        "customer_name_key": name_key(name),
        "customer_phone_masked": phone,
        "customer_phone_tail": phone[-3:] if phone else None,
    }


async def remember(engine: AsyncEngine, handoff_id: int, code: str, status: dict[str, Any] | None) -> None:
    """Store what the signing service said for `code`, unless the row's code changed meanwhile."""
    h = db.handoffs
    async with engine.begin() as conn:
        await conn.execute(
            h.update()
            .where(h.c.id == handoff_id, h.c.request_code == code)
            .values(customer_code=code, **customer_fields(status))
        )


class CustomerIndexer:
    """Fills the customer columns of handoffs that have a request code not yet looked up."""

    def __init__(self, engine: AsyncEngine, signing: SigningClient, interval: float) -> None:
        self.engine = engine
        self.signing = signing
        self.interval = interval

    async def pending(self) -> list[tuple[int, str]]:
        h = db.handoffs
        async with self.engine.connect() as conn:
            # Never looked up (a partial index keeps this cheap however many rows are done) ...
            fresh = await conn.execute(
                sa.select(h.c.id, h.c.request_code)
                .where(h.c.request_code.isnot(None), h.c.customer_code.is_(None))
                .order_by(h.c.id.desc())
                .limit(BATCH)
            )
            # ... or an open conversation whose customer gave another code since.
            changed = await conn.execute(
                sa.select(h.c.id, h.c.request_code).where(
                    h.c.status.in_(db.OPEN_STATUSES),
                    h.c.request_code.isnot(None),
                    h.c.customer_code.isnot(None),
                    h.c.customer_code != h.c.request_code,
                )
            )
            rows = list(changed) + list(fresh)
        return [(r.id, r.request_code) for r in rows[:BATCH]]

    async def index_pending(self) -> int:
        """One round; returns how many rows were looked up. SigningError: the service failed."""
        answers: dict[str, dict[str, Any] | None] = {}  # one call per code (a customer comes back)
        rows = await self.pending()
        for handoff_id, code in rows:
            if code not in answers:
                answers[code] = await self.signing.request_status(code)
            await remember(self.engine, handoff_id, code, answers[code])
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Index until `stop` is set; a failing signing service is retried less and less often."""
        delay = self.interval
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
                return
            try:
                done = await self.index_pending()
                delay = BURST_PAUSE if done == BATCH else self.interval
            except asyncio.CancelledError:
                raise
            except SigningError:
                delay = min(max(delay, self.interval) * 2, MAX_BACKOFF)
                log.warning("customer index: signing service unavailable; next try in %.0f s", delay)
            except Exception:
                delay = min(max(delay, self.interval) * 2, MAX_BACKOFF)
                log.exception("customer index round failed")
