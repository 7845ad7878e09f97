"""From Rasa's events to handoffs: a request for a human queues one, a withdrawal or a restart ends
it, and the customer's lines keep its preview current. Every desk process sees every event."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa

from agent_desk import db, transcript
from agent_desk.csat import Surveys
from agent_desk.handoff_store import HandoffStore
from common.chat_identity import DEFAULT_CHAT_CHANNEL
from common.rasa_client import RasaError
from common.request_code import normalize_request_code

log = logging.getLogger(__name__)


class HandoffIngest:
    def __init__(self, store: HandoffStore, surveys: Surveys) -> None:
        self.store = store
        self.surveys = surveys

    async def ingest(self, event: dict[str, Any]) -> None:
        """Sink of the event broker: one Rasa event of one conversation."""
        store = self.store
        sender = str(event.get("sender_id") or "")[:255]
        if not sender:
            return
        store.saw_event(sender)
        kind = event.get("event")
        try:
            ts = float(event.get("timestamp") or time.time())
        except (TypeError, ValueError):
            ts = time.time()
        if kind == "user" and event.get("input_channel"):
            store._channels.put(sender, str(event["input_channel"])[:64])
        if kind == "slot" and event.get("name") == "request_code" and isinstance(event.get("value"), str):
            code = normalize_request_code(event["value"])
            if code:
                store._codes.put(sender, code)
                await self._set_code(sender, code)

        if (kind == "action" and event.get("name") == transcript.HANDOFF_ACTION) or (
            kind == "slot" and event.get("name") == "handoff_requested" and event.get("value") is True
        ):
            await self._request(sender, ts)
        elif kind == "slot" and event.get("name") == "handoff_requested" and not event.get("value"):
            await self._withdraw(sender, ts)
        elif kind == "restart":
            await self._end_on_restart(sender)
        if kind in {"user", "restart"}:
            try:
                await self.surveys.ingest(sender, event, ts)
            except Exception:  # a survey problem must not hold up the queue's events
                log.exception("satisfaction survey: event not handled")

        message = transcript.message_from_event(event)
        if message is not None:
            store.hub.publish("message", message, conversation=sender)
            if sender in store._open and message["kind"] in {"user", "bot"}:
                await self._append_preview(sender, message)

    async def _set_code(self, sender: str, code: str) -> None:
        store = self.store
        if sender not in store._open:
            return
        async with store.engine.begin() as conn:
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == store._open[sender]).values(request_code=code)
            )
        await store.publish_queue()

    async def _append_preview(self, sender: str, message: dict[str, Any]) -> None:
        store = self.store
        if message["ts"] <= store._preview_ts.get(sender, 0.0):
            return
        handoff_id = store._open[sender]
        async with store.engine.begin() as conn:
            # Locked (PostgreSQL): every desk process sees every event and tries the same append;
            # the first adds the line, the others find its time there and add nothing.
            current = await conn.scalar(
                sa.select(db.handoffs.c.last_messages).where(db.handoffs.c.id == handoff_id).with_for_update()
            )
            existing = json.loads(current or "[]")
            newest = max((float(p.get("ts") or 0) for p in existing if isinstance(p, dict)), default=0.0)
            if message["ts"] and message["ts"] <= newest:
                return
            previews = existing + transcript.preview([message], 1)
            values: dict[str, Any] = {"last_messages": json.dumps(previews[-3:], ensure_ascii=False)}
            if message["kind"] == "user":
                values["customer_last_at"] = message["ts"]
            await conn.execute(db.handoffs.update().where(db.handoffs.c.id == handoff_id).values(**values))
        await store.publish_queue()

    async def _request(self, sender: str, ts: float) -> None:
        store = self.store
        if sender in store._open:
            return  # the action and its slot event arrive together; a repeat ask keeps its place
        async with store.engine.connect() as conn:
            seen = (
                await conn.execute(
                    sa.select(db.handoffs.c.id, db.handoffs.c.status).where(
                        db.handoffs.c.sender_id == sender, db.handoffs.c.requested_at == ts
                    )
                )
            ).first()
        if seen:
            # A redelivered event of a request already handled, or one another desk process queued
            # (each desk process sees every event).
            if seen.status in db.OPEN_STATUSES:
                store._open[sender] = int(seen.id)
            return
        channel = store._channels.get(sender, "")
        code = store._codes.get(sender)
        previews: list[dict[str, str]] = []
        try:
            # One tracker read per request (not a poll): channel, request code and context lines.
            tracker = await store.rasa.tracker(sender)
            events = tracker.get("events") or []
            channel = tracker.get("latest_input_channel") or channel
            slot_code = (tracker.get("slots") or {}).get("request_code")
            code = normalize_request_code(slot_code) or code
            previews = transcript.preview(transcript.messages(events))
            if events:
                store._preview_ts.put(sender, float(events[-1].get("timestamp") or 0))
        except RasaError:
            log.warning("could not read the tracker of a new handoff; queued with what the events said")
        now = time.time()
        try:
            async with store.engine.begin() as conn:
                result = await conn.execute(
                    db.handoffs.insert().values(
                        sender_id=sender,
                        channel=channel or DEFAULT_CHAT_CHANNEL,
                        status="waiting",
                        request_code=code,
                        requested_at=ts,
                        queued_at=now,
                        last_messages=json.dumps(previews, ensure_ascii=False),
                        customer_last_at=ts,
                        requeue_count=0,
                    )
                )
        except sa.exc.IntegrityError:
            await store.load_open()  # another desk process queued it first
            return
        store._open[sender] = db.inserted_id(result)
        log.info("handoff %s queued (channel %s)", store._open[sender], channel)
        await store.publish_queue()

    async def _withdraw(self, sender: str, ts: float) -> None:
        store = self.store
        if sender not in store._open:
            return
        async with store.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update()
                .where(
                    db.handoffs.c.id == store._open[sender],
                    db.handoffs.c.status == "waiting",
                    db.handoffs.c.requested_at < ts,
                )
                .values(status="cancelled", closed_at=time.time(), close_tag="withdrawn")
            )
        if result.rowcount == 1:
            store._open.pop(sender, None)
            await store.publish_queue()

    async def _end_on_restart(self, sender: str) -> None:
        """The customer restarted the conversation (/restart): Rasa dropped the pause, so the
        handoff ends; an agent still on it sees the page change."""
        store = self.store
        if sender not in store._open:
            return
        async with store.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update()
                .where(db.handoffs.c.id == store._open[sender], db.handoffs.c.status.in_(db.OPEN_STATUSES))
                .values(status="cancelled", closed_at=time.time(), close_tag="customer_restart")
            )
        store._open.pop(sender, None)
        if result.rowcount == 1:
            await store.publish_queue()
