"""The handoff queue: what the desk learns from Rasa's events and what agents do with conversations.

State of a handoff (one row per request for a human):

    waiting --claim--> active --hand back--> closed
       |                 |
       |                 +--agent idle--> waiting (still paused in Rasa; a colleague can take it)
       +--nobody claimed in time--> timed_out (bot resumed, customer gets the hotline)
       +--customer withdrew (slot handoff_requested=false)--> cancelled

Every transition is one conditional UPDATE (`... WHERE status = <expected>`), so two agents, two
browser tabs or the background sweeper can never both win; the loser gets a clear message. The
Rasa side effect runs after the winning UPDATE and the row is put back if Rasa fails.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_desk import db, transcript
from agent_desk.accounts import Agent
from agent_desk.config import Settings
from agent_desk.csat import Surveys
from agent_desk.hub import Hub
from agent_desk.peers import Peers
from agent_desk.responses import DomainResponses, MissingResponse
from agent_desk.signing_client import SigningClient, normalise_code
from common.rasa_client import RasaClient, RasaError

log = logging.getLogger(__name__)

VN_TZ = timezone(timedelta(hours=7))  # "today" for the supervisor is a Vietnamese working day
MAX_REPLY = 2000
MAX_NOTE = 2000
CLOSE_TAGS = {
    "resolved": "Đã giải quyết",
    "info_provided": "Đã cung cấp thông tin",
    "escalated": "Chuyển bộ phận khác",
    "customer_left": "Khách không phản hồi",
    "other": "Khác",
}
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Checked inside a claim's transaction before its UPDATE; raises DeskError to refuse the claim.
ClaimGuard = Callable[[AsyncConnection], Awaitable[None]]


class DeskError(Exception):
    """A refused action; `message` is shown to the agent as is."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Handoff:
    id: int
    sender_id: str
    channel: str
    status: str
    request_code: str | None
    requested_at: float
    queued_at: float
    claimed_at: float | None
    agent_id: int | None
    agent_name: str | None
    agent_activity_at: float | None
    closed_at: float | None
    close_tag: str | None
    last_messages: list[dict[str, str]]
    requeue_count: int
    bot_error: str | None = None  # the bot failed on the customer's message (agent_desk/bot_failures.py)
    customer_last_at: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sender_id": self.sender_id,
            "channel": self.channel,
            "status": self.status,
            "request_code": self.request_code,
            "queued_at": self.queued_at,
            "claimed_at": self.claimed_at,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "last_messages": self.last_messages,
            "requeue_count": self.requeue_count,
            "bot_error": self.bot_error,
            "customer_last_at": self.customer_last_at,  # desk.js: alert on the agent's other conversations
        }


def clean_text(text: str, limit: int) -> str:
    text = CONTROL_RE.sub("", text or "").strip()
    if not text:
        raise DeskError("Nội dung trống.", 400)
    if len(text) > limit:
        raise DeskError(f"Nội dung quá dài (tối đa {limit} ký tự).", 400)
    return text


class LRU(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def _select_handoffs() -> sa.sql.Select:
    h, a = db.handoffs, db.agents
    return sa.select(h, a.c.display_name.label("agent_name")).select_from(
        h.outerjoin(a, h.c.agent_id == a.c.id)
    )


def _handoff(row: Any) -> Handoff:
    try:
        last = json.loads(row.last_messages or "[]")
    except ValueError:
        last = []
    return Handoff(
        id=row.id,
        sender_id=row.sender_id,
        channel=row.channel,
        status=row.status,
        request_code=row.request_code,
        requested_at=row.requested_at,
        queued_at=row.queued_at,
        claimed_at=row.claimed_at,
        agent_id=row.agent_id,
        agent_name=row.agent_name,
        agent_activity_at=row.agent_activity_at,
        closed_at=row.closed_at,
        close_tag=row.close_tag,
        last_messages=last,
        requeue_count=row.requeue_count or 0,
        bot_error=row.bot_error,
        customer_last_at=row.customer_last_at,
    )


class Desk:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        rasa: RasaClient,
        signing: SigningClient,
        responses: DomainResponses,
        hub: Hub,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.rasa = rasa
        self.signing = signing
        self.responses = responses
        self.hub = hub
        self._open: dict[str, int] = {}  # sender_id -> open handoff id
        self._channels: LRU = LRU(20_000)
        self._codes: LRU = LRU(20_000)
        # Per-conversation version bumped on every broker event: the demo page's poll skips Rasa
        # when nothing happened in its conversation.
        self._boot = secrets.token_hex(4)
        self._versions: LRU = LRU(20_000)
        # Timestamp of the newest event already in a handoff's preview (read from the tracker when it
        # was queued): the same events arriving afterwards from the broker are not added twice.
        self._preview_ts: LRU = LRU(20_000)
        self.events_seen = 0
        self.peers: Peers | None = None  # other desk processes on the same PostgreSQL database
        self.csat = Surveys(self)  # satisfaction survey after a hand-back

    # ------------------------------------------------------------------ reading
    async def load_open(self) -> None:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(db.handoffs.c.id, db.handoffs.c.sender_id).where(
                        db.handoffs.c.status.in_(db.OPEN_STATUSES)
                    )
                )
            ).all()
        self._open = {r.sender_id: r.id for r in rows}

    async def get(self, handoff_id: int) -> Handoff | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_select_handoffs().where(db.handoffs.c.id == handoff_id))).first()
        return _handoff(row) if row else None

    async def open_handoffs(self) -> list[Handoff]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    _select_handoffs()
                    .where(db.handoffs.c.status.in_(db.OPEN_STATUSES))
                    .order_by(db.handoffs.c.queued_at)
                )
            ).all()
        return [_handoff(r) for r in rows]

    async def queue_snapshot(self) -> dict[str, Any]:
        items = await self.open_handoffs()
        return {
            "now": time.time(),
            "waiting": [h.as_json() for h in items if h.status == "waiting"],
            "active": [h.as_json() for h in items if h.status == "active"],
            "queue_timeout": self.settings.queue_timeout,
        }

    def version(self, sender_id: str) -> str:
        return f"{self._boot}-{self._versions.get(sender_id, 0)}"

    # ------------------------------------------------------------------ broker events
    async def ingest(self, event: dict[str, Any]) -> None:
        """Sink of the event broker: one Rasa event of one conversation."""
        sender = str(event.get("sender_id") or "")[:255]
        if not sender:
            return
        self.events_seen += 1
        self._versions.put(sender, self._versions.get(sender, 0) + 1)
        kind = event.get("event")
        try:
            ts = float(event.get("timestamp") or time.time())
        except (TypeError, ValueError):
            ts = time.time()
        if kind == "user" and event.get("input_channel"):
            self._channels.put(sender, str(event["input_channel"])[:64])
        if kind == "slot" and event.get("name") == "request_code" and isinstance(event.get("value"), str):
            code = normalise_code(event["value"])
            if code:
                self._codes.put(sender, code)
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
                await self.csat.ingest(sender, event, ts)
            except Exception:  # a survey problem must not hold up the queue's events
                log.exception("satisfaction survey: event not handled")

        message = transcript.message_from_event(event)
        if message is not None:
            self.hub.publish("message", message, conversation=sender)
            if sender in self._open and message["kind"] in {"user", "bot"}:
                await self._append_preview(sender, message)

    async def _set_code(self, sender: str, code: str) -> None:
        if sender not in self._open:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == self._open[sender]).values(request_code=code)
            )
        await self.publish_queue()

    async def _append_preview(self, sender: str, message: dict[str, Any]) -> None:
        if message["ts"] <= self._preview_ts.get(sender, 0.0):
            return
        handoff_id = self._open[sender]
        async with self.engine.begin() as conn:
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
        await self.publish_queue()

    async def _request(self, sender: str, ts: float) -> None:
        if sender in self._open:
            return  # the action and its slot event arrive together; a repeat ask keeps its place
        async with self.engine.connect() as conn:
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
                self._open[sender] = int(seen.id)
            return
        channel = self._channels.get(sender, "")
        code = self._codes.get(sender)
        previews: list[dict[str, str]] = []
        try:
            # One tracker read per request (not a poll): channel, request code and context lines.
            tracker = await self.rasa.tracker(sender)
            events = tracker.get("events") or []
            channel = tracker.get("latest_input_channel") or channel
            slot_code = (tracker.get("slots") or {}).get("request_code")
            code = (normalise_code(slot_code) if isinstance(slot_code, str) else None) or code
            previews = transcript.preview(transcript.messages(events))
            if events:
                self._preview_ts.put(sender, float(events[-1].get("timestamp") or 0))
        except RasaError:
            log.warning("could not read the tracker of a new handoff; queued with what the events said")
        now = time.time()
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    db.handoffs.insert().values(
                        sender_id=sender,
                        channel=channel or "rest",
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
            await self.load_open()  # another desk process queued it first
            return
        self._open[sender] = int(result.inserted_primary_key[0])
        log.info("handoff %s queued (channel %s)", self._open[sender], channel)
        await self.publish_queue()

    async def _withdraw(self, sender: str, ts: float) -> None:
        if sender not in self._open:
            return
        async with self.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update()
                .where(
                    db.handoffs.c.id == self._open[sender],
                    db.handoffs.c.status == "waiting",
                    db.handoffs.c.requested_at < ts,
                )
                .values(status="cancelled", closed_at=time.time(), close_tag="withdrawn")
            )
        if result.rowcount == 1:
            self._open.pop(sender, None)
            await self.publish_queue()

    async def _end_on_restart(self, sender: str) -> None:
        """The customer restarted the conversation (/restart): Rasa dropped the pause, so the
        handoff ends; an agent still on it sees the page change."""
        if sender not in self._open:
            return
        async with self.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update()
                .where(db.handoffs.c.id == self._open[sender], db.handoffs.c.status.in_(db.OPEN_STATUSES))
                .values(status="cancelled", closed_at=time.time(), close_tag="customer_restart")
            )
        self._open.pop(sender, None)
        if result.rowcount == 1:
            await self.publish_queue()

    # ------------------------------------------------------------------ agent actions
    def _bot_event(self, text: str, **metadata: str) -> dict[str, Any]:
        return {"event": "bot", "text": text, "metadata": metadata, "data": {}}

    def _handback_events(self, response: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = [
            {"event": "resume"},
            {"event": "action", "name": response},
            self._bot_event(self.responses.text(response), utter_action=response),
        ]
        if self.responses.has_slot("handoff_requested"):
            events.append({"event": "slot", "name": "handoff_requested", "value": False})
        # Leave the tracker listening, as after any bot turn, so the next message is predicted normally.
        events.append({"event": "action", "name": "action_listen"})
        return events

    async def _transition(self, handoff_id: int, where: list[Any], values: dict[str, Any]) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                db.handoffs.update().where(db.handoffs.c.id == handoff_id, *where).values(**values)
            )
        return result.rowcount == 1

    def joined_events(self, agent: Agent) -> list[dict[str, Any]]:
        """Pause the bot and tell the customer which agent joined: a claim, a transfer, a takeover."""
        try:
            joined = self.responses.text("utter_handoff_agent_joined", agent_name=agent.display_name)
        except MissingResponse as exc:
            raise DeskError(f"Chưa thể nhận hội thoại: {exc}.", 503) from exc
        return [
            {"event": "pause"},
            {"event": "action", "name": "utter_handoff_agent_joined"},
            self._bot_event(joined, utter_action="utter_handoff_agent_joined", joined_agent=agent.username),
        ]

    async def claim(self, handoff_id: int, agent: Agent, guard: ClaimGuard | None = None) -> Handoff:
        """An agent takes a waiting conversation. Auto-assignment goes through here too, with a
        `guard` run in the claim's transaction before its UPDATE (it raises DeskError to refuse)."""
        events = self.joined_events(agent)
        now = time.time()
        async with self.engine.begin() as conn:
            if guard is not None:
                await guard(conn)
            result = await conn.execute(
                db.handoffs.update()
                .where(db.handoffs.c.id == handoff_id, db.handoffs.c.status == "waiting")
                .values(status="active", agent_id=agent.id, claimed_at=now, agent_activity_at=now)
            )
        won = result.rowcount == 1
        if not won:
            current = await self.get(handoff_id)
            if current is None:
                raise DeskError("Không tìm thấy hội thoại.", 404)
            if current.status == "active" and current.agent_id == agent.id:
                return current
            if current.status == "active":
                raise DeskError(f"Hội thoại này đã được {current.agent_name} nhận xử lý.")
            raise DeskError("Hội thoại này đã kết thúc, không còn trong hàng chờ.")
        handoff = await self.get(handoff_id)
        assert handoff is not None
        from agent_desk import channel_window

        push = await channel_window.can_push(self, handoff)  # outside Zalo's window: recorded only
        try:
            await self.rasa.append_events(handoff.sender_id, events, push=push)
        except RasaError as exc:
            await self._transition(
                handoff_id,
                [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
                {"status": "waiting", "agent_id": None, "claimed_at": None},
            )
            raise DeskError(f"Chưa nhận được hội thoại: {exc}. Hãy thử lại.", 502) from exc
        log.info("handoff %s claimed by %s", handoff_id, agent.username)
        await self.publish_queue()
        return handoff

    async def _owned(self, handoff_id: int, agent: Agent) -> Handoff:
        handoff = await self.get(handoff_id)
        if handoff is None:
            raise DeskError("Không tìm thấy hội thoại.", 404)
        if handoff.status != "active" or handoff.agent_id != agent.id:
            if handoff.status == "waiting":
                raise DeskError("Hội thoại đã quay lại hàng chờ; hãy nhận lại trước khi trả lời.")
            if handoff.status == "active":
                raise DeskError(f"Hội thoại đang do {handoff.agent_name} xử lý.", 403)
            raise DeskError("Hội thoại này đã kết thúc.")
        return handoff

    async def touch(self, handoff_id: int, agent: Agent) -> None:
        await self._transition(
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"agent_activity_at": time.time()},
        )

    async def reply(self, handoff_id: int, agent: Agent, text: str) -> None:
        text = clean_text(text, MAX_REPLY)
        handoff = await self._owned(handoff_id, agent)
        from agent_desk import channel_window  # imports the app keys, hence this module

        refusal = await channel_window.reply_refusal(self, handoff)  # Zalo's 48 h: SMS instead
        if refusal:
            raise DeskError(refusal, 409)
        try:
            await self.rasa.append_events(
                handoff.sender_id,
                [self._bot_event(text, agent=agent.username, agent_name=agent.display_name)],
            )
        except RasaError as exc:
            raise DeskError(f"Tin nhắn chưa gửi được: {exc}.", 502) from exc
        now = time.time()
        await self._transition(  # touch, and the first reply's time (reports: first response)
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"agent_activity_at": now, "first_reply_at": sa.func.coalesce(db.handoffs.c.first_reply_at, now)},
        )

    async def hand_back(self, handoff_id: int, agent: Agent, tag: str) -> None:
        if tag not in CLOSE_TAGS:
            raise DeskError("Hãy chọn kết quả xử lý hợp lệ.", 400)
        try:
            events = self._handback_events("utter_handoff_returned")
        except MissingResponse as exc:
            raise DeskError(f"Chưa thể trả hội thoại cho bot: {exc}.", 503) from exc
        survey = self.csat.ask_events(agent)  # satisfaction survey, before the final action_listen
        events[-1:-1] = survey
        asked_at = time.time()
        handoff = await self._owned(handoff_id, agent)
        won = await self._transition(
            handoff_id,
            [db.handoffs.c.status == "active", db.handoffs.c.agent_id == agent.id],
            {"status": "closed", "closed_at": time.time(), "close_tag": tag},
        )
        if not won:
            raise DeskError("Hội thoại vừa thay đổi trạng thái; hãy tải lại trang.")
        from agent_desk import channel_window

        push = await channel_window.can_push(self, handoff)  # outside Zalo's window: recorded only
        try:
            await self.rasa.append_events(handoff.sender_id, events, push=push)
        except RasaError as exc:
            await self._transition(
                handoff_id,
                [db.handoffs.c.status == "closed"],
                {"status": "active", "closed_at": None, "close_tag": None},
            )
            raise DeskError(f"Chưa trả được cho bot: {exc}. Hãy thử lại.", 502) from exc
        self._open.pop(handoff.sender_id, None)
        log.info("handoff %s handed back by %s (%s)", handoff_id, agent.username, tag)
        if survey:
            try:
                await self.csat.asked(handoff_id, handoff.sender_id, agent.id, asked_at)
            except Exception:
                log.exception("handoff %s: satisfaction survey sent but not recorded", handoff_id)
        await self.publish_queue()

    # ------------------------------------------------------------------ background
    async def sweep(self, now: float | None = None) -> dict[str, int]:
        """Time out unclaimed requests and return idle agents' conversations to the queue."""
        now = time.time() if now is None else now
        done = {"timed_out": 0, "requeued": 0}
        h = db.handoffs
        async with self.engine.connect() as conn:
            expired = (
                await conn.execute(
                    sa.select(h.c.id, h.c.sender_id).where(
                        h.c.status == "waiting", h.c.queued_at < now - self.settings.queue_timeout
                    )
                )
            ).all()
            idle = (
                await conn.execute(
                    sa.select(h.c.id).where(
                        h.c.status == "active", h.c.agent_activity_at < now - self.settings.agent_idle_timeout
                    )
                )
            ).all()
        for row in idle:
            if await self._transition(
                row.id,
                [h.c.status == "active", h.c.agent_activity_at < now - self.settings.agent_idle_timeout],
                {
                    "status": "waiting",
                    "agent_id": None,
                    "queued_at": now,
                    "requeue_count": h.c.requeue_count + 1,
                },
            ):
                done["requeued"] += 1
                log.info("handoff %s back to the queue: agent idle", row.id)
        for row in expired:
            if not await self._transition(
                row.id,
                [h.c.status == "waiting", h.c.queued_at < now - self.settings.queue_timeout],
                {"status": "timed_out", "closed_at": now, "close_tag": "queue_timeout"},
            ):
                continue
            try:
                await self.rasa.append_events(row.sender_id, self._handback_events("utter_handoff_timeout"))
            except (RasaError, MissingResponse):
                log.warning("handoff %s: could not resume the bot; will retry", row.id)
                await self._transition(
                    row.id,
                    [h.c.status == "timed_out"],
                    {"status": "waiting", "closed_at": None, "close_tag": None},
                )
                continue
            self._open.pop(row.sender_id, None)
            done["timed_out"] += 1
            log.info("handoff %s timed out in the queue", row.id)
        try:
            await self.csat.sweep(now)  # resume the bot where a survey comment never came
        except Exception:
            log.exception("satisfaction survey sweep failed")
        if done["timed_out"] or done["requeued"]:
            await self.publish_queue()
        return done

    async def publish_queue(self) -> None:
        if self.hub.subscribers:
            self.hub.publish("queue", await self.queue_snapshot())
        if self.peers is not None:  # the other desk processes' browsers (agent_desk/peers.py)
            await self.peers.notify()

    async def reload_from_peers(self) -> None:
        """Another desk process changed the queue: refresh what we keep and tell our browsers."""
        await self.load_open()
        if self.hub.subscribers:
            self.hub.publish("queue", await self.queue_snapshot())

    # ------------------------------------------------------------------ notes and canned responses
    async def add_note(self, handoff: Handoff, agent: Agent, text: str) -> None:
        text = clean_text(text, MAX_NOTE)
        async with self.engine.begin() as conn:
            await conn.execute(
                db.notes.insert().values(
                    sender_id=handoff.sender_id,
                    handoff_id=handoff.id,
                    agent_id=agent.id,
                    text=text,
                    created_at=time.time(),
                )
            )
        await self.touch(handoff.id, agent)

    async def notes(self, sender_id: str) -> list[dict[str, Any]]:
        n, a = db.notes, db.agents
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(n.c.id, n.c.text, n.c.created_at, a.c.display_name)
                    .select_from(n.join(a, n.c.agent_id == a.c.id))
                    .where(n.c.sender_id == sender_id)
                    .order_by(n.c.created_at)
                )
            ).all()
        # Agents type customers' phone numbers into notes too: shown masked, like the transcript.
        return [
            {
                "id": r.id,  # transfer notes get a label (agent_desk/transfer.py)
                "text": transcript.for_staff(r.text),
                "created_at": r.created_at,
                "agent_name": r.display_name,
            }
            for r in rows
        ]

    async def canned(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(db.canned).order_by(db.canned.c.title))).all()
        return [{"id": r.id, "title": r.title, "text": r.text} for r in rows]

    async def save_canned(self, agent: Agent, canned_id: int | None, title: str, text: str) -> None:
        title = clean_text(title, 100)
        text = clean_text(text, MAX_REPLY)
        values = {"title": title, "text": text, "updated_by": agent.id, "updated_at": time.time()}
        async with self.engine.begin() as conn:
            if canned_id is None:
                await conn.execute(db.canned.insert().values(**values))
            else:
                result = await conn.execute(
                    db.canned.update().where(db.canned.c.id == canned_id).values(**values)
                )
                if result.rowcount != 1:
                    raise DeskError("Không tìm thấy câu trả lời mẫu.", 404)

    async def delete_canned(self, canned_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(db.canned.delete().where(db.canned.c.id == canned_id))

    # ------------------------------------------------------------------ supervisor
    async def stats(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        day_start = (
            datetime.fromtimestamp(now, VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        )
        h, a = db.handoffs, db.agents
        open_items = await self.open_handoffs()
        waiting = [now - x.queued_at for x in open_items if x.status == "waiting"]
        async with self.engine.connect() as conn:
            per_agent = (
                await conn.execute(
                    sa.select(
                        a.c.id,
                        a.c.display_name,
                        a.c.username,
                        sa.func.sum(sa.case((h.c.status == "active", 1), else_=0)).label("active"),
                        sa.func.sum(
                            sa.case((sa.and_(h.c.status == "closed", h.c.closed_at >= day_start), 1), else_=0)
                        ).label("closed_today"),
                    )
                    .select_from(a.outerjoin(h, h.c.agent_id == a.c.id))
                    .where(a.c.active.is_(True))
                    .group_by(a.c.id, a.c.display_name, a.c.username)
                    .order_by(a.c.display_name)
                )
            ).all()
            today = (
                await conn.execute(
                    sa.select(h.c.status, sa.func.count().label("n"))
                    .where(h.c.closed_at >= day_start)
                    .group_by(h.c.status)
                )
            ).all()
            handled = await conn.scalar(
                sa.select(sa.func.avg(h.c.closed_at - h.c.claimed_at)).where(
                    h.c.status == "closed", h.c.closed_at >= day_start
                )
            )
        by_status = {r.status: r.n for r in today}
        return {
            "queue_length": len(waiting),
            "longest_wait": max(waiting, default=0.0),
            "average_wait": sum(waiting) / len(waiting) if waiting else 0.0,
            "active": sum(1 for x in open_items if x.status == "active"),
            "closed_today": by_status.get("closed", 0),
            "timed_out_today": by_status.get("timed_out", 0),
            "cancelled_today": by_status.get("cancelled", 0),
            "average_handling_today": float(handled or 0),
            "agents": [
                {
                    "name": r.display_name,
                    "username": r.username,
                    "active": int(r.active or 0),
                    "closed_today": int(r.closed_today or 0),
                }
                for r in per_agent
            ],
            "open": open_items,
        }
