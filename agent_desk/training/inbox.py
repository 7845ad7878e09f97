"""The trainers' inbox: customer messages the bot handled badly, masked and grouped, in the desk's database.

Collected incrementally from Rasa's events (the `events` table of the SQL tracker store, RASA_EVENTS_DB,
or a database URL), the last event id read kept in `desk_broker_cursor` under ``training_inbox``. The
flags are trainer/review.py's (`make review`): NLU fallback, low confidence (below
review_max_confidence of nlu_thresholds.yml), the two-stage fallback action, a handoff right after a
miss; a message whose conversation an agent then answered on the desk is also marked "corrected".

Only the masked text is stored (phones, e-mails, ID numbers and codes by common/personal_text.py, full
names by the NLU's own name finder and the `customer_name` entities): never the raw message. Messages
equal to an example already in the training data are left out. Similar messages share a group: the
same folded form (lower case, no diacritics, digits and punctuation collapsed), or nearly the same
set of words (Jaccard similarity of the word sets ≥ NEAR_DUPLICATE).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_desk import db
from agent_desk.broker import CursorStore
from agent_desk.text_files import load_labels
from agent_desk.training.texts import TRAINING_TEXTS
from bot.components.vietnamese_names import find_names
from common.folding import fold
from common.request_code import REQUEST_CODE_IN_TEXT
from trainer import review, textnorm
from trainer.project import Project
from trainer.settings import Settings as TrainerSettings

log = logging.getLogger(__name__)
CURSOR = "training_inbox"
BATCH = 5000
MAX_TEXT = 500
NEAR_DUPLICATE = 0.8
NAME_SAMPLE = "Nguyễn Văn A"
STATUSES = ("new", "labelled", "dismissed")
REASONS = ("fallback", "low_confidence", "handoff", "corrected")
REASON_LABELS = load_labels(TRAINING_TEXTS, "reasons", REASONS)
STATUS_LABELS = load_labels(TRAINING_TEXTS, "statuses", STATUSES)

inbox = sa.Table(
    "desk_training_inbox",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("group_key", sa.String(300), nullable=False, unique=True),
    sa.Column("words", sa.String(600), nullable=False, default=""),  # sorted folded word set
    sa.Column("text", sa.String(MAX_TEXT), nullable=False),  # masked; never the raw message
    sa.Column("reasons", sa.String(64), nullable=False),  # comma-separated REASONS
    sa.Column("intent", sa.String(100), nullable=False, default=""),  # the model's guess
    sa.Column("confidence", sa.Float, nullable=False, default=0.0),  # lowest seen
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False, index=True),
    sa.Column("count", sa.Integer, nullable=False, default=1, index=True),
    sa.Column("status", sa.String(16), nullable=False, default="new", index=True),
    sa.Column("labelled_intent", sa.String(100)),
    sa.Column("handled_by", sa.String(100)),
    sa.Column("handled_at", sa.Float),
)

# Messages per Vietnamese day and reason (a message with two reasons counts under each; "all": once).
inbox_days = sa.Table(
    "desk_training_inbox_days",
    db.metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD, Asia/Ho_Chi_Minh
    sa.Column("reason", sa.String(16), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)

_DIGITS = re.compile(r"\d+")
_PUNCT = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")


def mask_names(text: str, names: list[str] | None = None) -> str:
    """Full names (the NLU's name finder) and the given entity values replaced by a sample name."""
    for name in sorted({n for n in names or [] if len(n.strip()) >= 2}, key=len, reverse=True):
        text = re.sub(re.escape(name.strip()), NAME_SAMPLE, text, flags=re.IGNORECASE)
    spans = list(find_names(text))
    for start, end in reversed(spans):
        if text[start:end] != NAME_SAMPLE:
            text = text[:start] + NAME_SAMPLE + text[end:]
    return text


# Trainers see no customer's data at all (agents see partly masked phones; trainers are not agents):
# request codes, phones, e-mails, 6-digit codes, long numbers (accounts, ID numbers) and full dates
# become samples that keep the sentence useful as an example.
SAMPLE_CODE = "PC00XX0000000"
SAMPLE_NUMBER = "0000000"
SAMPLE_DATE = "01/01/2000"
_LONG_NUMBER = re.compile(r"(?<!\w)\d(?:[\s.\-/]?\d){6,}(?!\w)")
_FULL_DATE = re.compile(r"(?<!\d)\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)\d{2}(?!\d)")
_KEEP = {"0900000000", SAMPLE_NUMBER, SAMPLE_DATE}


def _samples(text: str) -> str:
    text = REQUEST_CODE_IN_TEXT.sub(SAMPLE_CODE, text)
    text = _FULL_DATE.sub(SAMPLE_DATE, text)
    text = review.mask(text)  # e-mails, phones, 6-digit codes (as make review does)
    return _LONG_NUMBER.sub(lambda m: m.group(0) if m.group(0) in _KEEP else SAMPLE_NUMBER, text)


def masked(text: str, names: list[str] | None = None) -> str:
    """What the inbox stores and shows: NFC, single spaces, personal data replaced by samples, names
    by a sample name, ≤ MAX_TEXT chars. The input is cut first so every pattern runs on a bounded text.
    (Not the desk's partial masking, which leaves digits of a phone visible: trainers are not agents.)"""
    clean = textnorm.clean_example(text[: MAX_TEXT * 4])
    return mask_names(_samples(clean), names)[:MAX_TEXT]


def group_key(text: str) -> str:
    """Lower case, no diacritics, digits as one '0', punctuation dropped, single spaces."""
    folded = fold(text)
    folded = _DIGITS.sub("0", folded.replace("*", "0"))
    return _SPACES.sub(" ", _PUNCT.sub(" ", folded)).strip()[:300]


def word_set(key: str) -> frozenset[str]:
    return frozenset(key.split())


def similar(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE


def vn_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, review.LOCAL_TZ).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Candidate:
    text: str  # masked
    key: str
    reasons: tuple[str, ...]
    intent: str
    confidence: float
    at: float


def _names_in(ev: dict[str, Any]) -> list[str]:
    parse = ev.get("parse_data") or {}
    out = []
    for ent in parse.get("entities") or []:
        if isinstance(ent, dict) and ent.get("entity") == "customer_name":
            out.append(str(ent.get("value") or ""))
            text = str(ev.get("text") or "")
            start, end = ent.get("start"), ent.get("end")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
                out.append(text[start:end])
    return out


def _reason_names(reasons: list[str]) -> tuple[str, ...]:
    mapping = {"nlu_fallback": "fallback", "fallback": "fallback", "low_confidence": "low_confidence"}
    out = {mapping.get(r, r) for r in reasons}
    return tuple(r for r in REASONS if r in out)


def candidates(
    events: list[tuple[str, dict[str, Any]]],
    max_confidence: float,
    handoff_actions: tuple[str, ...],
    known: set[str],
    corrected_senders: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[Candidate]:
    """Masked candidates of a batch of events (trainer/review.py's flags), training examples left out."""
    names: dict[tuple[str, float, str], list[str]] = {}
    for sender, ev in events:
        if ev.get("event") == "user":
            names[(sender, float(ev.get("timestamp") or 0.0), str(ev.get("text") or "").strip()[:500])] = (
                _names_in(ev)
            )
    out = []
    for m in review.poorly_understood(events, max_confidence, handoff_actions):
        if textnorm.compare_key(textnorm.clean_example(m.text)) in known:
            continue
        text = masked(m.text, names.get((m.sender, m.timestamp, m.text), []))
        key = group_key(text)
        if not key:
            continue
        reasons = list(m.reasons)
        if "handoff" in reasons and m.sender in corrected_senders:
            reasons.append("corrected")
        out.append(Candidate(text, key, _reason_names(reasons), m.intent[:100], m.confidence, m.timestamp))
    return out


def known_keys(settings: TrainerSettings) -> set[str]:
    return {textnorm.compare_key(e.plain) for e in Project.load(settings).train_examples()}


def _read_batch(source: str, after: int, limit: int) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Events with id > after (at most `limit`), and the last id read."""
    if "://" in source:
        url = source
    else:
        if not Path(source).exists():
            return [], after
        url = f"sqlite:///{source}"
    events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("data"))
    engine = sa.create_engine(url, future=True)
    out: list[tuple[str, dict[str, Any]]] = []
    last = after
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(events.c.id, events.c.sender_id, events.c.data)
                .where(events.c.id > after)
                .order_by(events.c.id)
                .limit(limit)
            )
            for event_id, sender, data in rows:
                last = max(last, int(event_id))
                try:
                    ev = json.loads(data) if isinstance(data, str) else None
                except ValueError:
                    continue
                if isinstance(ev, dict):
                    out.append((str(sender), ev))
    except sa.exc.SQLAlchemyError as exc:
        raise review.ReviewError(f"events table unreadable: {exc.__class__.__name__}") from None
    finally:
        engine.dispose()
    return out, last


async def _corrected_senders(engine: AsyncEngine, senders: set[str]) -> set[str]:
    """Conversations an agent answered on the desk (a first reply was recorded)."""
    if not senders:
        return set()
    h = db.handoffs
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(h.c.sender_id).where(
                h.c.sender_id.in_(list(senders)[:1000]), h.c.first_reply_at.is_not(None)
            )
        )
        return {str(r.sender_id) for r in rows}


async def _advance(conn: AsyncConnection, start: int, end: int) -> bool:
    """Move the cursor from `start` to `end` in the caller's transaction; False when another desk
    process moved it first (then it has stored these events and this transaction must not)."""
    cur = db.broker_cursor
    moved = await conn.execute(
        cur.update().where(cur.c.name == CURSOR, cur.c.position == start).values(position=end)
    )
    if moved.rowcount == 1:
        return True
    exists = await conn.scalar(sa.select(sa.func.count()).select_from(cur).where(cur.c.name == CURSOR))
    if exists or start != 0:
        return False
    await conn.execute(cur.insert().values(name=CURSOR, position=end))
    return True


async def store(engine: AsyncEngine, found: list[Candidate], start: int = 0, end: int | None = None) -> int:
    """Merge candidates into their groups (exact key, else a near-duplicate among open groups), and
    move the cursor from `start` to `end` in the same transaction, so that two desk processes reading
    the same events never count them twice."""
    try:
        async with engine.begin() as conn:
            if end is not None and not await _advance(conn, start, end):
                return 0
            return await _merge(conn, found)
    except IntegrityError:  # the other process created the cursor or a group first: it has these
        log.info("training inbox: events already collected by another desk process")
        return 0


async def _merge(conn: AsyncConnection, found: list[Candidate]) -> int:
    if found:
        for c in found:
            row = (await conn.execute(sa.select(inbox).where(inbox.c.group_key == c.key))).first()
            words = word_set(c.key)
            if row is None:
                # Near-duplicates: among the newest groups sharing the first word (bounded scan).
                first = sorted(words)[0] if words else ""
                near = (
                    await conn.execute(
                        sa.select(inbox.c.id, inbox.c.words, inbox.c.group_key)
                        .where(inbox.c.words.like(f"{first}%") | inbox.c.words.like(f"% {first}%"))
                        .order_by(inbox.c.last_seen.desc())
                        .limit(200)
                    )
                ).all()
                row_id = next((r.id for r in near if similar(words, word_set(r.words))), None)
                if row_id is not None:
                    row = (await conn.execute(sa.select(inbox).where(inbox.c.id == row_id))).first()
            if row is None:
                await conn.execute(
                    inbox.insert().values(
                        group_key=c.key,
                        words=" ".join(sorted(words))[:600],
                        text=c.text,
                        reasons=",".join(c.reasons),
                        intent=c.intent,
                        confidence=c.confidence,
                        first_seen=c.at,
                        last_seen=c.at,
                        count=1,
                        status="new",
                    )
                )
            else:
                reasons = tuple(r for r in REASONS if r in set(row.reasons.split(",")) | set(c.reasons))
                await conn.execute(
                    inbox.update()
                    .where(inbox.c.id == row.id)
                    .values(
                        # by key: a Row's `.count` is the column at run time, but typed as Sequence.count
                        count=row._mapping["count"] + 1,
                        reasons=",".join(reasons),
                        confidence=min(row.confidence, c.confidence),
                        first_seen=min(row.first_seen, c.at),
                        last_seen=max(row.last_seen, c.at),
                    )
                )
            day = vn_day(c.at)
            for reason in (*c.reasons, "all"):
                updated = await conn.execute(
                    inbox_days.update()
                    .where(inbox_days.c.day == day, inbox_days.c.reason == reason)
                    .values(count=inbox_days.c.count + 1)
                )
                if updated.rowcount == 0:
                    await conn.execute(inbox_days.insert().values(day=day, reason=reason, count=1))
    return len(found)


_collect_lock = asyncio.Lock()


def collecting() -> bool:
    return _collect_lock.locked()


async def collect(engine: AsyncEngine, source: str, settings: TrainerSettings, max_batches: int = 20) -> int:
    """Read the events written since the last call; returns how many messages were added."""
    async with _collect_lock:
        position = await CursorStore(engine, CURSOR).load() or 0
        known: set[str] | None = None
        added = 0
        for _ in range(max_batches):
            events, last = await asyncio.to_thread(_read_batch, source, position, BATCH)
            if last == position:
                break
            found: list[Candidate] = []
            if events:
                if known is None:
                    known = await asyncio.to_thread(known_keys, settings)
                senders = {s for s, _ev in events}
                corrected = await _corrected_senders(engine, senders)
                found = candidates(
                    events, settings.review_max_confidence, settings.handoff_actions, known, corrected
                )
            added += await store(engine, found, position, last)
            position = await CursorStore(engine, CURSOR).load() or last
        if added:
            log.info("training inbox: %d poorly understood messages collected", added)
        return added


async def set_status(
    engine: AsyncEngine, group_id: int, status: str, who: str, intent: str | None = None
) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            inbox.update()
            .where(inbox.c.id == group_id)
            .values(status=status, handled_by=who[:100], handled_at=time.time(), labelled_intent=intent)
        )
        return bool(result.rowcount)


async def get(engine: AsyncEngine, group_id: int) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(inbox).where(inbox.c.id == group_id))).first()
    return dict(row._mapping) if row is not None else None


async def page(
    engine: AsyncEngine, reason: str, status: str, page_no: int, size: int
) -> tuple[list[dict[str, Any]], int]:
    """Groups sorted by count (then newest), filtered; and the number of matching groups."""
    where = []
    if status:
        where.append(inbox.c.status == status)
    if reason:
        where.append((inbox.c.reasons == reason) | inbox.c.reasons.like(f"%{reason}%"))
    async with engine.connect() as conn:
        total = await conn.scalar(sa.select(sa.func.count()).select_from(inbox).where(*where))
        rows = (
            await conn.execute(
                sa.select(inbox)
                .where(*where)
                .order_by(inbox.c.count.desc(), inbox.c.last_seen.desc(), inbox.c.id)
                .limit(size)
                .offset((page_no - 1) * size)
            )
        ).all()
    return [dict(r._mapping) for r in rows], int(total or 0)


async def per_day(engine: AsyncEngine, days: int = 14, now: float | None = None) -> list[dict[str, Any]]:
    """The last `days` Vietnamese days, newest first, with counts per reason and in total."""
    now = time.time() if now is None else now
    wanted = [vn_day(now - 86400 * k) for k in range(days)]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(inbox_days).where(inbox_days.c.day.in_(wanted)))).all()
    counts: dict[str, dict[str, int]] = {d: {} for d in wanted}
    for r in rows:
        counts[r.day][r.reason] = int(r._mapping["count"])  # the column (`r.count` types as Sequence.count)
    return [{"day": d, "by_reason": counts[d], "total": counts[d].get("all", 0)} for d in wanted]
