"""`make review`: customer messages the bot understood poorly, from the event store, to a CSV to label.

Reads the `events` table of Rasa's SQL tracker store (default var/rasa_events.db, the
RASA_EVENTS_DB of `make run`); Rasa's SQL event broker writes a table with the same `id`,
`sender_id` and `data` columns, so either works. A customer message is exported when:

* its intent confidence is below `review_max_confidence` (nlu_thresholds.yml), or
* the intent is `nlu_fallback` (FallbackClassifier) or the bot ran `action_default_fallback`, or
* the bot handed the conversation to an agent right after it. If that message itself asked for an
  agent (`human_handoff`), the message before it is exported instead: that is the one the bot failed on.

Messages already in the training data, button payloads ("/intent") and repeats are left out. Phone
numbers, e-mail addresses and 6-digit codes are replaced by harmless samples before they reach the CSV.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from common.personal_text import mask_codes
from trainer import csvio, textnorm
from trainer.nlucsv import REVIEW_HEADER
from trainer.project import Project
from trainer.settings import Settings

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTIONS = ("action_default_fallback",)
HANDOFF_INTENT = "human_handoff"
MAX_TEXT = 500

_PHONE = re.compile(r"(?<!\d)(?:\+?84|0)(?:[\s.\-]?\d){9}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class ReviewError(Exception):
    """The event store cannot be read; the message says why."""


def mask(text: str) -> str:
    """Replace personal data by samples that keep the sentence useful for training."""
    text = _EMAIL.sub("email@example.com", text)
    text = _PHONE.sub("0900000000", text)
    return mask_codes(text, "123456")  # every form the bot takes as a one-time code


@dataclass
class Message:
    sender: str
    text: str
    intent: str
    confidence: float
    timestamp: float
    reasons: list[str] = field(default_factory=list)


def default_db(settings: Settings) -> str:
    return (
        os.environ.get("REVIEW_DB_URL")
        or os.environ.get("RASA_EVENTS_DB")
        or str(settings.root / "var" / "rasa_events.db")
    )


def _engine(db: str) -> sa.engine.Engine:
    if "://" not in db:
        path = Path(db)
        if not path.exists():
            raise ReviewError(
                f"không thấy cơ sở dữ liệu sự kiện {path}: bot đã chạy chưa (make run)? Hoặc chỉ định DB=..."
            )
        return sa.create_engine(f"sqlite:///{path}", future=True)
    return sa.create_engine(db, future=True)


def read_events(db: str) -> list[tuple[str, dict]]:
    """(sender_id, event dict) in the order they were written."""
    events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("data"))
    engine = _engine(db)
    out: list[tuple[str, dict]] = []
    try:
        with engine.connect() as conn:
            for _id, sender, data in conn.execute(
                sa.select(events.c.id, events.c.sender_id, events.c.data).order_by(events.c.id)
            ):
                try:
                    ev = json.loads(data) if isinstance(data, str) else {}
                except json.JSONDecodeError:
                    continue
                if isinstance(ev, dict):
                    out.append((str(sender), ev))
    except sa.exc.SQLAlchemyError as exc:
        raise ReviewError(
            f"không đọc được bảng 'events' trong {db.split('@')[-1]}: {exc.__class__.__name__}"
        ) from None
    finally:
        engine.dispose()
    return out


def poorly_understood(
    events: list[tuple[str, dict]], max_confidence: float, handoff_actions: tuple[str, ...]
) -> list[Message]:
    flagged: list[Message] = []
    last: dict[str, Message] = {}
    previous: dict[str, Message] = {}
    for sender, ev in events:
        kind = ev.get("event")
        if kind == "user":
            text = str(ev.get("text") or "").strip()
            if not text or text.startswith("/"):
                continue
            parse = ev.get("parse_data") or {}
            intent = parse.get("intent") or {}
            name, conf = str(intent.get("name") or ""), float(intent.get("confidence") or 0.0)
            msg = Message(sender, text[:MAX_TEXT], name, conf, float(ev.get("timestamp") or 0.0))
            if name == FALLBACK_INTENT:
                ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
                if ranking:
                    msg.intent, msg.confidence = (
                        str(ranking[0].get("name")),
                        float(ranking[0].get("confidence") or 0),
                    )
                msg.reasons.append("nlu_fallback")
            elif conf < max_confidence:
                msg.reasons.append("low_confidence")
            if sender in last:
                previous[sender] = last[sender]
            last[sender] = msg
            flagged.append(msg)
        elif kind == "action" and sender in last:
            action = ev.get("name")
            target = last[sender]
            if action in handoff_actions:
                if target.intent == HANDOFF_INTENT and target.confidence >= max_confidence:
                    target = previous.get(sender, target)
                    if target.intent == HANDOFF_INTENT:
                        continue
                if "handoff" not in target.reasons:
                    target.reasons.append("handoff")
            elif action in FALLBACK_ACTIONS and "fallback" not in target.reasons:
                target.reasons.append("fallback")
    return [m for m in flagged if m.reasons]


def _local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def export_review(settings: Settings, out: Path, db: str | None = None, limit: int = 2000) -> int:
    """Write the review CSV; returns the number of rows."""
    events = read_events(db or default_db(settings))
    messages = poorly_understood(events, settings.review_max_confidence, settings.handoff_actions)
    known = {textnorm.compare_key(e.plain) for e in Project.load(settings).train_examples()}
    rows: list[list[str]] = []
    seen: set[str] = set()
    for m in messages:
        text = mask(textnorm.clean_example(m.text))
        key = textnorm.compare_key(text)
        if not key or key in known or key in seen:
            continue
        seen.add(key)
        rows.append(
            [
                text,
                m.intent,
                f"{m.confidence:.2f}",
                m.sender,
                _local_time(m.timestamp),
                "",
                "",
                ",".join(m.reasons),
            ]
        )
        if len(rows) >= limit:
            break
    return csvio.write_csv(out, REVIEW_HEADER, rows)
