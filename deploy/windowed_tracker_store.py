"""A SQL tracker store whose working tracker holds only the last turns of a conversation.

Why: Rasa rebuilds the tracker from every event of the session on every message and then replays
that list several times per turn (applied_events, past_states, copies, JSON for the action server).
A conversation of 100 turns makes every turn several times slower than turn 5. Session expiry does
not help inside one long session.

What: `retrieve` loads the state at the start of a window (slot values, active loop, paused flag),
computed from the compact (id, type, state-data) rows of the earlier events with Rasa's own
revert rules, followed by the full events of the last `window_turns` user turns. Dialogue policies
look back a few turns only (MemoizationPolicy max_history, rules), so their predictions do not
change. Every event is still stored; `retrieve_full_tracker` (the HTTP API's
`GET /conversations/{id}/tracker`, the desk transcript) still returns the whole history.
`save` stores exactly the events added since `retrieve` (a count of stored rows would be wrong
for a windowed tracker) and streams the same events to the event broker without the second full
read Rasa's `stream_events` does.

Configure in endpoints (see deploy/endpoints.scaled.yml):
    tracker_store:
      type: deploy.windowed_tracker_store.WindowedSQLTrackerStore
      window_turns: 10
      dialect: postgresql ...
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

from deploy import rasa_speedups

logger = logging.getLogger(__name__)
rasa_speedups.install()  # this module is what Rasa imports at start-up in the scaled topology

# Event types whose data the window's starting state depends on (or that reset/revert it).
STATE_TYPES = ("slot", "reset_slots", "active_loop", "pause", "resume")
RESET_TYPES = ("restart", "session_started")
LOADED_ATTR = "_cskh_events_loaded"


def state_at(rows: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Events that recreate the state after `rows` ((type, data) in order), as Rasa applies them.

    Mirrors DialogueStateTracker.applied_events for what matters to state: restart/session start
    clear everything, `undo` drops back to the previous action, `rewind` drops back to the previous
    user message and the action before it.
    """
    applied: list[tuple[str, dict[str, Any] | None]] = []

    def undo_till(kind: str) -> None:
        while applied:
            if applied.pop()[0] == kind:
                return

    for kind, data in rows:
        if kind in RESET_TYPES:
            applied = []
        elif kind == "undo":
            undo_till("action")
        elif kind == "rewind":
            undo_till("user")
            undo_till("action")
        else:
            applied.append((kind, data))
    slots: dict[str, Any] = {}
    loop: str | None = None
    paused = False
    for kind, data in applied:
        if kind == "slot" and data is not None:
            slots[data["name"]] = data.get("value")
        elif kind == "reset_slots":
            slots = {}
            # Rasa's ResetAllSlots resets to initial values; an explicit None set is equivalent
            # for every slot we had set.
        elif kind == "active_loop" and data is not None:
            loop = data.get("name")
        elif kind == "pause":
            paused = True
        elif kind == "resume":
            paused = False
    out: list[dict[str, Any]] = [{"event": "slot", "name": k, "value": v} for k, v in slots.items()]
    if loop:
        out.append({"event": "active_loop", "name": loop})
    if paused:
        out.append({"event": "pause"})
    return out


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class WindowedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, window_turns: int | str = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_turns = int(window_turns)
        if self.window_turns < 2:
            raise ValueError("window_turns must be at least 2")
        self._prepared = self._statements()
        if self.engine.dialect.name == "sqlite":
            # WAL: the desk's and `make review`'s readers never block a turn's write, and a commit
            # is one append instead of a rollback journal with two fsyncs (synchronous=NORMAL keeps
            # every committed turn through a process crash; only an OS crash can lose the last ones).
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    def _statements(self) -> tuple[Any, Any, Any]:
        """Core statements built once (the ORM query of Rasa's store cost ~0.3 ms per turn)."""
        t = self.SQLEvent.__table__
        sid = sa.bindparam("sid")
        # Same session boundary as SQLTrackerStore._event_query: events from the latest
        # session_started on (by timestamp), or all of them.
        session_start = (
            sa.select(sa.func.max(t.c.timestamp))
            .where(t.c.sender_id == sid, t.c.type_name == "session_started")
            .scalar_subquery()
        )
        compact = (
            sa.select(t.c.id, t.c.type_name, sa.case((t.c.type_name.in_(STATE_TYPES), t.c.data), else_=None))
            .where(t.c.sender_id == sid, sa.or_(t.c.timestamp >= session_start, session_start.is_(None)))
            .order_by(t.c.id)
        )
        window = (
            sa.select(t.c.id, t.c.data)
            .where(t.c.sender_id == sid, t.c.id >= sa.bindparam("first"))
            .order_by(t.c.id)
        )
        return compact, window, t.insert()

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        compact, window_stmt, _ = self._prepared
        with self.engine.connect() as conn:
            rows = conn.execute(compact, {"sid": sender_id}).all()
            if not rows or not self.domain:
                return None
            users = [i for i, r in enumerate(rows) if r[1] == "user"]
            start = users[-self.window_turns] if len(users) > self.window_turns else 0
            wanted = [r[0] for r in rows[start:]]
            data_by_id = dict(conn.execute(window_stmt, {"sid": sender_id, "first": wanted[0]}).all())
        window = [json.loads(data_by_id[i]) for i in wanted]
        events = window
        if start:
            prefix = state_at([(r[1], json.loads(r[2]) if r[2] else None) for r in rows[:start]])
            at = window[0].get("timestamp")
            # The window starts at a user message, which always follows action_listen.
            prefix.append({"event": "action", "name": "action_listen"})
            events = [{**e, "timestamp": at} for e in prefix] + window
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        setattr(tracker, LOADED_ATTR, len(tracker.events))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        loaded = getattr(tracker, LOADED_ATTR, None)
        if loaded is None:  # a tracker we did not load (new conversation, PUT of a whole tracker)
            await super().save(tracker)
            setattr(tracker, LOADED_ATTR, len(tracker.events))
            return
        new = list(tracker.events)[loaded:]
        if self.event_broker and new:
            await self._stream_new_events(self.event_broker, new, tracker.sender_id)
        rows = []
        for event in new:
            data = event.as_dict()
            rows.append(
                {
                    "sender_id": tracker.sender_id,
                    "type_name": event.type_name,
                    "timestamp": data.get("timestamp"),
                    "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
                    "action_name": data.get("name"),
                    "data": json.dumps(data),
                }
            )
        if rows:
            # One transaction, one multi-row insert per turn (the ORM unit of work cost more than
            # the write itself).
            with self.engine.begin() as conn:
                conn.execute(self._prepared[2], rows)
        setattr(tracker, LOADED_ATTR, len(tracker.events))
