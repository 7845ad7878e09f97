"""Satisfaction survey (CSAT) after an agent hands a conversation back to the bot.

1. Hand-back (`Desk.hand_back`; never after a queue timeout, a withdrawal or a restart): the bot
   line `utter_csat_ask` with five buttons `/csat{"csat_score":"1"}` ... `"5"` goes out on the
   customer's own channel, in the same append as the hand-back, and a `desk_csat` row is written
   (handoff, conversation, agent, asked_at). The bot is running again: a customer who ignores the
   survey just carries on with it.
2. A button press reaches Rasa as intent `csat` with the entity `csat_score`. The bot has no rule for
   it, and its core fallback (`action_nlu_fallback`) says nothing for that intent. The desk sees the
   user event on the event broker, stores the score (first answer only, within
   `DESK_CSAT_ANSWER_WINDOW`), pauses the bot and sends `utter_csat_thanks`, which asks for an
   optional comment and offers a "Bỏ qua" button (`/deny`).
3. While paused (at most `DESK_CSAT_COMMENT_WINDOW` seconds), the customer's next message is the
   comment: stored, then the bot is resumed with `utter_csat_comment_thanks`. "Bỏ qua" or a short
   "không" resumes it with `utter_anything_else`. Another button of an older message, or a typed
   request for a human, is not a comment: the bot is resumed and that intent is run again
   (`trigger_intent`), so the bot answers it. Nobody writes: the sweep resumes the bot silently.

Why pause only for the comment: while the score is awaited the bot must keep answering (a customer
may ignore the survey), and the fallback stays quiet on the `csat` intent; but a free-text comment
would be read by the NLU and answered with a fallback or a wrong flow, so during that short window
the bot listens without answering, as during a handoff.

The pending surveys of the last `DESK_CSAT_ANSWER_WINDOW` are kept in memory (loaded from the
database on first use), so ordinary broker events cost no query.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from agent_desk import db
from agent_desk.responses import MissingResponse
from common.rasa_client import RasaError

if TYPE_CHECKING:
    from agent_desk.accounts import Agent
    from agent_desk.config import Settings
    from agent_desk.handoff_store import HandoffStore

log = logging.getLogger(__name__)

CSAT_INTENT = "csat"
SCORE_ENTITY = "csat_score"
SCORES = (1, 2, 3, 4, 5)
ASK = "utter_csat_ask"
THANKS = "utter_csat_thanks"
COMMENT_THANKS = "utter_csat_comment_thanks"
SKIPPED = "utter_anything_else"
SKIP_INTENT = "deny"  # the "Bỏ qua" button of utter_csat_thanks, or a short typed "không"
SKIP_MAX_TYPED = 15  # "không", "không có gì": longer text classified `deny` is a comment
# Typed while a comment is awaited, these are requests, not comments: the bot handles them.
REPLAY_INTENTS = {"human_handoff"}
REPLAY_MIN_CONFIDENCE = 0.8
# Rasa's own intents: their events (restart, session start) follow and are handled as such.
RASA_INTENTS = {"restart", "session_start", "back", "nlu_fallback"}
MAX_COMMENT = 1000
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PAYLOAD_SCORE_RE = re.compile(r'^/csat\{.*"csat_score"\s*:\s*"?([1-5])"?\s*[,}]')
PAUSE_MARK = {"csat": "comment"}  # metadata of the survey's pause/resume (the transcript says why)


@dataclass
class Pending:
    id: int
    asked_at: float
    answered_at: float | None
    comment_until: float | None


def payload_score(payload: str) -> int | None:
    match = PAYLOAD_SCORE_RE.match(payload.strip())
    return int(match.group(1)) if match else None


def event_score(event: dict[str, Any]) -> int | None:
    """The 1..5 score of a `csat` user event: its `csat_score` entity, else the payload text."""
    for entity in (event.get("parse_data") or {}).get("entities") or []:
        if isinstance(entity, dict) and entity.get("entity") == SCORE_ENTITY:
            value = str(entity.get("value", "")).strip()
            if value.isascii() and value.isdigit() and int(value) in SCORES:
                return int(value)
    return payload_score(str(event.get("text") or ""))


def clean_comment(text: str) -> str:
    return CONTROL_RE.sub("", text).strip()[:MAX_COMMENT]


class Surveys:
    def __init__(self, desk: HandoffStore) -> None:
        self.desk = desk  # its rasa client, responses, engine, settings and open handoffs
        self._pending: dict[str, Pending] = {}  # conversation -> its latest survey still open
        self._loaded = False

    @property
    def settings(self) -> Settings:
        return self.desk.settings

    # ------------------------------------------------------------------ asking
    def ask_events(self, agent: Agent) -> list[dict[str, Any]]:
        """The survey question, appended by the hand-back; [] when switched off or not in the domain."""
        if not self.settings.csat_enabled:
            return []
        responses = self.desk.responses
        try:
            text = responses.text(ASK, agent_name=agent.display_name)
            buttons = responses.buttons(ASK)
        except MissingResponse as exc:
            log.warning("no satisfaction survey: %s", exc)
            return []
        if sorted(payload_score(b["payload"]) or 0 for b in buttons) != list(SCORES):
            log.warning("no satisfaction survey: %s must have the five /csat buttons", ASK)
            return []
        return [
            {"event": "action", "name": ASK},
            {
                "event": "bot",
                "text": text,
                "data": {"buttons": buttons},
                "metadata": {"utter_action": ASK, "csat_agent": agent.username},
            },
        ]

    async def asked(self, handoff_id: int, sender: str, agent_id: int, at: float) -> None:
        async with self.desk.engine.begin() as conn:
            result = await conn.execute(
                db.csat.insert().values(
                    handoff_id=handoff_id, sender_id=sender, agent_id=agent_id, asked_at=at
                )
            )
        await self._load()
        self._pending[sender] = Pending(db.inserted_id(result), at, None, None)

    # ------------------------------------------------------------------ state
    async def _load(self) -> None:
        if self._loaded:
            return
        c = db.csat
        since = time.time() - self.settings.csat_answer_window
        async with self.desk.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(c.c.id, c.c.sender_id, c.c.asked_at, c.c.answered_at, c.c.comment_until)
                    .where(
                        sa.or_(
                            sa.and_(c.c.score.is_(None), c.c.asked_at > since),
                            c.c.comment_until.is_not(None),
                        )
                    )
                    .order_by(c.c.asked_at)
                )
            ).all()
        for r in rows:  # oldest first: a conversation keeps its latest survey
            self._pending[r.sender_id] = Pending(r.id, r.asked_at, r.answered_at, r.comment_until)
        self._loaded = True

    def _still_open(self, pending: Pending, now: float) -> bool:
        if pending.comment_until is not None:
            return True
        return pending.answered_at is None and pending.asked_at + self.settings.csat_answer_window > now

    async def _update(self, survey_id: int, where: list[Any], values: dict[str, Any]) -> bool:
        async with self.desk.engine.begin() as conn:
            result = await conn.execute(
                db.csat.update().where(db.csat.c.id == survey_id, *where).values(**values)
            )
        return result.rowcount == 1

    async def _append(self, sender: str, events: list[dict[str, Any]]) -> None:
        await self.desk.rasa.append_events(sender, events)

    def _bot(self, name: str, with_buttons: bool = False) -> list[dict[str, Any]]:
        responses = self.desk.responses
        data = {"buttons": responses.buttons(name)} if with_buttons else {}
        text = responses.text(name)
        return [
            {"event": "action", "name": name},
            {"event": "bot", "text": text, "data": data, "metadata": {"utter_action": name}},
        ]

    # ------------------------------------------------------------------ broker events
    async def ingest(self, sender: str, event: dict[str, Any], ts: float) -> None:
        """Sink of the desk's broker events (after the handoff logic saw them)."""
        kind = event.get("event")
        if kind not in {"user", "restart"}:
            return
        await self._load()
        pending = self._pending.get(sender)
        if pending is None:
            return
        if kind == "restart":
            # Rasa dropped the pause with everything else: no comment is awaited any more.
            if pending.comment_until is not None:
                await self._update(
                    pending.id, [db.csat.c.comment_until.is_not(None)], {"comment_until": None}
                )
                self._pending.pop(sender, None)
            return
        parse = event.get("parse_data") or {}
        intent = (parse.get("intent") or {}).get("name")
        if intent == CSAT_INTENT:
            score = event_score(event)
            if score is not None:
                await self._score(sender, pending, score, ts)
            return
        if pending.comment_until is not None and pending.answered_at is not None and ts > pending.answered_at:
            await self._comment_turn(sender, pending, event, ts)

    async def _score(self, sender: str, pending: Pending, score: int, ts: float) -> None:
        if ts <= pending.asked_at or ts > pending.asked_at + self.settings.csat_answer_window:
            return  # an event older than the question, or a button pressed long after
        c = db.csat
        if pending.answered_at is not None:
            # Another button while the comment is awaited: the customer changed their mind. One row
            # per survey, whatever the number of presses; after that, presses are ignored.
            if pending.comment_until is not None and ts > pending.answered_at:
                await self._update(pending.id, [c.c.comment_until.is_not(None)], {"score": score})
            return
        now = time.time()
        until = now + self.settings.csat_comment_window
        # An agent took the conversation again meanwhile (a new handoff): no pause of ours then.
        ask_comment = sender not in self.desk._open
        won = await self._update(
            pending.id,
            [c.c.score.is_(None)],
            {"score": score, "answered_at": ts, "comment_until": until if ask_comment else None},
        )
        if not won:
            return
        pending.answered_at = ts
        log.info("satisfaction survey %s answered: %s", pending.id, score)
        if not ask_comment:
            self._pending.pop(sender, None)  # stored; nothing said into the agent's conversation
            return
        pending.comment_until = until
        try:
            events = [{"event": "pause", "metadata": PAUSE_MARK}] + self._bot(THANKS, with_buttons=True)
            await self._append(sender, events)
        except (RasaError, MissingResponse) as exc:
            log.warning("survey %s: could not thank the customer (%s)", pending.id, exc)
            await self._update(pending.id, [c.c.comment_until.is_not(None)], {"comment_until": None})
            self._pending.pop(sender, None)

    async def _comment_turn(self, sender: str, pending: Pending, event: dict[str, Any], ts: float) -> None:
        parse = event.get("parse_data") or {}
        intent_data = parse.get("intent") or {}
        intent = str(intent_data.get("name") or "")
        text = str(event.get("text") or "")
        if intent in RASA_INTENTS and text.startswith("/"):
            return  # /restart and the like: Rasa's own events follow
        try:
            confidence = float(intent_data.get("confidence") or 0)
        except (TypeError, ValueError):
            confidence = 0.0
        payload = text.strip().startswith("/")
        if intent == SKIP_INTENT and (payload or len(text.strip()) <= SKIP_MAX_TYPED):
            await self._finish(sender, pending, {}, SKIPPED)
        elif payload or (intent in REPLAY_INTENTS and confidence >= REPLAY_MIN_CONFIDENCE):
            # A button of an older message, or "gặp nhân viên": resume the bot and let it answer.
            if await self._finish(sender, pending, {}, None) and intent and intent not in RASA_INTENTS:
                try:
                    await self.desk.rasa.trigger_intent(sender, intent, list(parse.get("entities") or []))
                except RasaError as exc:
                    log.warning(
                        "survey %s: could not pass the customer's %s on to the bot (%s)",
                        pending.id,
                        intent,
                        exc,
                    )
        else:
            comment = clean_comment(text)
            if comment:
                await self._finish(sender, pending, {"comment": comment, "commented_at": ts}, COMMENT_THANKS)

    async def _finish(
        self, sender: str, pending: Pending, values: dict[str, Any], response: str | None
    ) -> bool:
        """End the wait for a comment: store `values`, resume the bot (saying `response`)."""
        c = db.csat
        if not await self._update(
            pending.id, [c.c.comment_until.is_not(None)], {**values, "comment_until": None}
        ):
            return False
        self._pending.pop(sender, None)
        try:
            said = self._bot(response) if response else []
        except MissingResponse as exc:
            log.warning("survey %s: %s", pending.id, exc)
            said = []
        try:
            await self._resume(sender, said)
        except RasaError as exc:
            # The bot must not stay paused: the sweep resumes it as soon as Rasa answers.
            log.warning("survey %s: could not resume the bot (%s); retrying", pending.id, exc)
            # Messages meanwhile are no comments; as during a handoff, Rasa records them unanswered.
            await self._update(pending.id, [c.c.comment_until.is_(None)], {"comment_until": time.time()})
            return False
        return True

    async def _resume(self, sender: str, said: list[dict[str, Any]]) -> None:
        if sender in self.desk._open:
            return  # an agent has the conversation now: their pause stays
        events = [
            {"event": "resume", "metadata": PAUSE_MARK},
            *said,
            {"event": "action", "name": "action_listen"},
        ]
        await self._append(sender, events)

    # ------------------------------------------------------------------ background
    async def sweep(self, now: float | None = None) -> int:
        """Resume the bot where no comment came in time. Returns how many were resumed."""
        now = time.time() if now is None else now
        await self._load()
        c = db.csat
        async with self.desk.engine.connect() as conn:
            expired = (
                await conn.execute(
                    sa.select(c.c.id, c.c.sender_id, c.c.comment_until).where(
                        c.c.comment_until.is_not(None), c.c.comment_until < now
                    )
                )
            ).all()
        done = 0
        for row in expired:
            try:
                await self._resume(row.sender_id, [])
            except RasaError:
                log.warning("survey %s: could not resume the bot; will retry", row.id)
                continue
            if await self._update(row.id, [c.c.comment_until == row.comment_until], {"comment_until": None}):
                done += 1
            current = self._pending.get(row.sender_id)
            if current is not None and current.id == row.id:
                self._pending.pop(row.sender_id, None)
        for sender, pending in list(self._pending.items()):
            if not self._still_open(pending, now):
                self._pending.pop(sender, None)
        return done

    # ------------------------------------------------------------------ reading
    async def for_handoff(self, handoff_id: int) -> dict[str, Any] | None:
        async with self.desk.engine.connect() as conn:
            row = (await conn.execute(sa.select(db.csat).where(db.csat.c.handoff_id == handoff_id))).first()
        return dict(row._mapping) if row else None
