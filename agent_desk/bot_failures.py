"""Bot failures go to people: a message the bot failed on becomes a queued conversation flagged "bot lỗi".

The connectors record each failure in the bot failures store (connectors/common/bot_failures.py,
`BOT_FAILURES_URL`); the desk tails that table by id (`DESK_BOT_FAILURES_POLL_INTERVAL`), the last id
handled kept in `desk_broker_cursor` under the name ``bot_failures``. The desk's /demo proxy reports
its own (Rasa unreachable or answering 5xx) the same way.

For each failure: the conversation's open handoff gets the flag (`desk_handoffs.bot_error`, the
reason) and the message in its preview; without one, a handoff is queued (status ``waiting``, the
customer's message as preview). The message itself is kept in `desk_bot_failures` (Rasa may never
have recorded it), shown on the conversation page. The failure's key (channel + message id) is
unique there too, so a redelivery, a second desk or a replay after a crash queues nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent_desk import db, transcript
from agent_desk.responses import MissingResponse
from common.chat_identity import DEFAULT_CHAT_CHANNEL
from connectors.common import bot_failures as store
from connectors.common import canned

if TYPE_CHECKING:
    from agent_desk.handoff_store import HandoffStore

log = logging.getLogger(__name__)
CURSOR = "bot_failures"
BATCH = 100
MAX_TEXT = 4000
REST = DEFAULT_CHAT_CHANNEL  # the web chat talks to Rasa's REST channel

failures = sa.Table(
    "desk_bot_failures",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_key", sa.String(200), nullable=False, unique=True),
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id"), nullable=False, index=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(200), nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.Float, nullable=False),  # when the bot failed (the customer's message)
    sa.Column("received_at", sa.Float, nullable=False),  # when the desk queued it
)

# What agents read for each reason (connectors/common/bot_failures.py REASONS, and the desk's own).
REASON_LABELS = {
    "rasa_error": "Rasa lỗi khi xử lý",
    "rasa_timeout": "Rasa không trả lời kịp",
    "circuit_open": "Bot đang tạm ngắt do lỗi liên tiếp",
    "action_failed": "Action server lỗi",
    "action_loop": "Bot lặp hành động, đã dừng",
    "desk_proxy": "Rasa không phản hồi (web chat)",
}


@dataclass(frozen=True)
class Failure:
    key: str
    at: float
    channel: str
    sender_id: str
    reason: str
    detail: str
    text: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Failure:
        return cls(
            key=str(row["key"]),
            at=float(row["at"]),
            channel=str(row["channel"]),
            sender_id=str(row["sender_id"]),
            reason=str(row["reason"]),
            detail=str(row.get("detail") or ""),
            text=str(row.get("text") or ""),
        )


def _preview_line(text: str) -> dict[str, str]:
    """The queue's line for the message, masked as every customer text agents see."""
    text = transcript.for_staff(text).strip() or "(tin nhắn không phải văn bản)"
    return {"kind": "user", "text": (text[:157] + "…") if len(text) > 160 else text}


async def take(desk: HandoffStore, failure: Failure) -> int | None:
    """Queue (or flag) the conversation of one failure; the handoff id, or None when already taken."""
    h = db.handoffs
    sender = failure.sender_id[:255]
    for attempt in range(2):
        now = time.time()
        try:
            async with desk.engine.begin() as conn:
                seen = await conn.scalar(
                    sa.select(failures.c.id).where(failures.c.source_key == failure.key[:200])
                )
                if seen:
                    return None
                row = (
                    await conn.execute(
                        sa.select(h.c.id, h.c.last_messages, h.c.customer_last_at).where(
                            h.c.sender_id == sender, h.c.status.in_(db.OPEN_STATUSES)
                        )
                    )
                ).first()
                if row is not None:
                    handoff_id = int(row.id)
                    try:
                        previews = json.loads(row.last_messages or "[]")
                    except ValueError:
                        previews = []
                    await conn.execute(
                        h.update()
                        .where(h.c.id == handoff_id)
                        .values(
                            bot_error=failure.reason,
                            last_messages=json.dumps(
                                (previews + [_preview_line(failure.text)])[-3:], ensure_ascii=False
                            ),
                            customer_last_at=max(row.customer_last_at or 0.0, failure.at),
                        )
                    )
                else:
                    result = await conn.execute(
                        h.insert().values(
                            sender_id=sender,
                            channel=failure.channel or DEFAULT_CHAT_CHANNEL,
                            status="waiting",
                            request_code=desk._codes.get(sender),
                            requested_at=failure.at,
                            queued_at=now,
                            last_messages=json.dumps([_preview_line(failure.text)], ensure_ascii=False),
                            customer_last_at=failure.at,
                            requeue_count=0,
                            bot_error=failure.reason,
                        )
                    )
                    handoff_id = db.inserted_id(result)
                await conn.execute(
                    failures.insert().values(
                        source_key=failure.key[:200],
                        handoff_id=handoff_id,
                        sender_id=sender,
                        channel=failure.channel[:32],
                        reason=failure.reason[:32],
                        detail=failure.detail[:200],
                        text=failure.text[:MAX_TEXT],
                        at=failure.at,
                        received_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            # Another desk took this failure, or queued this conversation, between our read and write.
            if attempt:
                raise
            continue
        break
    desk._open[sender] = handoff_id
    # The same message may still come from Rasa's events (an action failed after it was recorded):
    # it is in the preview already.
    desk._preview_ts.put(sender, max(desk._preview_ts.get(sender, 0.0), failure.at))
    log.info("handoff %s: bot failure (%s) on a %s message", handoff_id, failure.reason, failure.channel)
    desk.hub.publish(
        "message",
        {
            "kind": "user",
            "text": transcript.for_staff(failure.text)[: transcript.MAX_TEXT],
            "ts": failure.at,
            "intent": None,
            "channel": failure.channel,
            "bot_failure": REASON_LABELS.get(failure.reason, failure.reason),
        },
        conversation=sender,
    )
    await desk.publish_queue()
    return handoff_id


def customer_text(desk: HandoffStore) -> str:
    """What the customer is told: the domain's `utter_bot_failure` if it has one, else the
    connectors' default (connectors/common/canned.py)."""
    try:
        return desk.responses.text(canned.BOT_FAILURE_RESPONSE)
    except MissingResponse:
        return canned.BOT_FAILURE_TEXT


async def from_web_chat(desk: HandoffStore, sender: str, text: str, detail: str) -> dict[str, Any]:
    """The /demo proxy got no answer from Rasa (down, 5xx, timeout): queue the visitor's message
    and return the message the page shows instead (it is not in the tracker)."""
    now = time.time()
    await take(
        desk,
        Failure(f"{REST}:desk-{secrets.token_hex(8)}", now, REST, sender, "desk_proxy", detail, text),
    )
    return {"kind": "bot", "text": customer_text(desk), "ts": now, "buttons": [], "bot_failure": "desk_proxy"}


async def of_handoff(desk: HandoffStore, handoff_id: int) -> list[dict[str, Any]]:
    """The messages the bot failed on during this handoff, oldest first, for the conversation page."""
    async with desk.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(failures.c.text, failures.c.at, failures.c.reason, failures.c.channel)
                .where(failures.c.handoff_id == handoff_id)
                .order_by(failures.c.at)
                .limit(50)
            )
        ).all()
    return [
        {
            "text": transcript.for_staff(r.text),
            "at": r.at,
            "reason": r.reason,
            "label": REASON_LABELS.get(r.reason, r.reason),
        }
        for r in rows
    ]


# ---------------------------------------------------------------------------------- the store
def make_store_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return create_async_engine(url, future=True, connect_args={"timeout": 30})
    return create_async_engine(url, future=True, pool_pre_ping=True)


class FailureSource:
    """Tails the connectors' bot failures table and hands each new row to `take`."""

    def __init__(self, url: str, desk_engine: AsyncEngine, poll_interval: float) -> None:
        self.url = url
        self.desk_engine = desk_engine
        self.poll_interval = poll_interval
        self._engine: AsyncEngine | None = None

    def _sqlite_file_missing(self) -> bool:
        """A SQLite store nobody wrote yet: nothing to read, and the desk does not create the file."""
        if not self.url.startswith("sqlite"):
            return False
        database = sa.engine.make_url(self.url).database
        return bool(database) and not Path(str(database)).exists()

    async def _store(self) -> AsyncEngine | None:
        if self._engine is None:
            if self._sqlite_file_missing():
                return None
            engine = make_store_engine(self.url)
            try:  # the connectors may not have written one yet
                async with engine.begin() as conn:
                    await conn.run_sync(store.metadata.create_all)
            except sa.exc.DatabaseError:  # created meanwhile by a Rasa worker
                async with engine.connect() as conn:
                    if not await conn.run_sync(lambda c: sa.inspect(c).has_table(store.failures.name)):
                        raise
            self._engine = engine
        return self._engine

    async def _cursor(self) -> int:
        async with self.desk_engine.connect() as conn:
            value = await conn.scalar(
                sa.select(db.broker_cursor.c.position).where(db.broker_cursor.c.name == CURSOR)
            )
        return int(value or 0)

    async def _save(self, position: int) -> None:
        c = db.broker_cursor
        async with self.desk_engine.begin() as conn:
            done = await conn.execute(c.update().where(c.c.name == CURSOR).values(position=position))
            if done.rowcount == 0:
                await conn.execute(c.insert().values(name=CURSOR, position=position))

    async def poll_once(self, desk: HandoffStore) -> int:
        """Take the failures recorded since the last call; how many were new to the desk."""
        engine = await self._store()
        if engine is None:
            return 0
        cursor = await self._cursor()
        t = store.failures
        async with engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in (
                    await conn.execute(sa.select(t).where(t.c.id > cursor).order_by(t.c.id).limit(BATCH))
                ).all()
            ]
            if not rows and cursor:
                newest = await conn.scalar(sa.select(sa.func.max(t.c.id)))
                if (newest or 0) < cursor:  # the store was replaced: start again (keys stay unique)
                    log.warning("bot failures store %s restarted its ids; reading it again", self.url)
                    await self._save(0)
                    return 0
        taken = 0
        for row in rows:
            if await take(desk, Failure.from_row(row)) is not None:
                taken += 1
            await self._save(int(row["id"]))
        return taken

    async def run(self, desk: HandoffStore, stop: asyncio.Event) -> None:
        delay = self.poll_interval
        while not stop.is_set():
            try:
                await self.poll_once(desk)
                delay = self.poll_interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading bot failures from %s failed; retrying", self.url.split("@")[-1])
                delay = min(max(delay * 2, 1.0), 30.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
