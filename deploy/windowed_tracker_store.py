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
import os
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker

from common.erasure import FORGET_SLOT
from deploy.source_pins import SourcePin

logger = logging.getLogger(__name__)

# Event types whose data the window's starting state depends on (or that reset/revert it).
STATE_TYPES = ("slot", "reset_slots", "active_loop", "pause", "resume")
RESET_TYPES = ("restart", "session_started")
LOADED_ATTR = "_cskh_events_loaded"
PREFIX_CACHE_SIZE = 10_000  # conversations whose pre-window state is kept in memory
# `create_tracker` below is Rasa's, with the new tracker marked as loaded from an empty store
# (tests/faults/test_windowed_tracker_store.py fails when Rasa's changes).
CREATE_TRACKER_PIN = SourcePin(
    "rasa.core.tracker_store:TrackerStore.create_tracker",
    "72f79c53bf4f3f9650a5b430ff4df92b62353a8ae6e424055a6c5d208d64ba4d",
)


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


def _remember_pid(_dbapi_connection: Any, record: Any) -> None:
    record.info["pid"] = os.getpid()


def _refuse_other_pid(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
    # SQLAlchemy's recipe for pools and os.fork(): a connection opened before a fork is dropped
    # (not closed: the parent still uses it) and the pool opens a new one in this process.
    if record.info.get("pid") != os.getpid():
        record.dbapi_connection = proxy.dbapi_connection = None
        raise sa.exc.DisconnectionError("connection opened in another process")


class WindowedSQLTrackerStore(SQLTrackerStore):
    engine: sa.engine.Engine

    def __init__(self, *args: Any, window_turns: int | str = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window_turns = int(window_turns)
        if self.window_turns < 2:
            raise ValueError("window_turns must be at least 2")
        self._prepared = self._statements()
        self._prefix_cache: OrderedDict[str, tuple[float | None, int, list[Any]]] = OrderedDict()
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 gives a SQLite file a NullPool: every retrieve and save opened the
            # file, set its pragmas and closed it again, 12 % of a turn's time under load
            # (bench/README.md). One pooled connection per process instead; the store is built in
            # each Sanic worker after the fork, so no connection crosses a fork.
            if self.engine.url.database not in (None, "", ":memory:"):  # memory: one connection
                self._pool_sqlite_file()
            # WAL: the desk's and `make review`'s readers never block a turn's write, and a commit
            # is one append instead of a rollback journal with two fsyncs (synchronous=NORMAL keeps
            # every committed turn through a process crash; only an OS crash can lose the last ones).
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    def _pool_sqlite_file(self) -> None:
        self.engine.dispose()
        self.engine = sa.create_engine(
            self.engine.url,
            poolclass=sa.pool.QueuePool,
            pool_size=2,
            max_overflow=4,
            connect_args={"check_same_thread": False},
        )
        self.sessionmaker.configure(bind=self.engine)
        sa.event.listen(self.engine, "connect", _remember_pid)
        sa.event.listen(self.engine, "checkout", _refuse_other_pid)

    def _statements(self) -> dict[str, Any]:
        """Core statements built once (the ORM query of Rasa's store cost ~0.3 ms per turn)."""
        t = self.SQLEvent.__table__
        sid = sa.bindparam("sid")
        sts = sa.bindparam("sts", type_=sa.Float)
        # Same session boundary as SQLTrackerStore._event_query: events from the latest
        # session_started on (by timestamp), or all of them when there is none.
        in_session = sa.and_(t.c.sender_id == sid, sa.or_(sts.is_(None), t.c.timestamp >= sts))
        return {
            "session_ts": sa.select(sa.func.max(t.c.timestamp)).where(
                t.c.sender_id == sid, t.c.type_name == "session_started"
            ),
            # The last user messages, newest first: where the window starts.
            "users": sa.select(t.c.id)
            .where(in_session, t.c.type_name == "user")
            .order_by(t.c.id.desc())
            .limit(sa.bindparam("n")),
            "session": sa.select(t.c.id, t.c.data).where(in_session).order_by(t.c.id),
            "window": sa.select(t.c.id, t.c.data).where(
                t.c.sender_id == sid, t.c.id >= sa.bindparam("first")
            ),
            # Compact rows (type, and data only for state events) of a range before the window.
            "compact": sa.select(
                t.c.id, t.c.type_name, sa.case((t.c.type_name.in_(STATE_TYPES), t.c.data), else_=None)
            )
            .where(in_session, t.c.id >= sa.bindparam("lo"), t.c.id < sa.bindparam("hi"))
            .order_by(t.c.id),
            "insert": t.insert(),
        }

    def _prefix_state(self, conn: Any, sender_id: str, session_ts: float | None, start: int) -> list[Any]:
        """State rows ((type, data) for state_at) of the session's events before id `start`.

        Events are only ever appended, so the state before a given id never changes: it is cached
        per conversation and carried forward from the previous window start, which keeps a turn's
        reading proportional to the window, not to the conversation (turn 100 = turn 5).
        """
        cached = self._prefix_cache.get(sender_id)
        lo, base = 0, []
        if cached and cached[0] == session_ts and cached[1] <= start:
            lo, base = cached[1], cached[2]
        if lo < start:
            rows = conn.execute(
                self._prepared["compact"], {"sid": sender_id, "sts": session_ts, "lo": lo, "hi": start}
            ).all()
            state = state_at(base + [(r[1], json.loads(r[2]) if r[2] else None) for r in rows])
            # The window starts at a user message, which always follows action_listen; an undo or
            # rewind at the start of the window pops that action, not the state before it.
            base = [(e["event"], e) for e in state] + [("action", None)]
        self._prefix_cache[sender_id] = (session_ts, start, base)
        self._prefix_cache.move_to_end(sender_id)
        while len(self._prefix_cache) > PREFIX_CACHE_SIZE:
            self._prefix_cache.popitem(last=False)
        return base

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        q = self._prepared
        with self.engine.connect() as conn:
            session_ts = conn.execute(q["session_ts"], {"sid": sender_id}).scalar()
            params = {"sid": sender_id, "sts": session_ts}
            users = [r[0] for r in conn.execute(q["users"], {**params, "n": self.window_turns + 1})]
            prefix: list[Any] = []
            if len(users) > self.window_turns:  # more turns than the window: load the last ones
                start = users[self.window_turns - 1]
                prefix = self._prefix_state(conn, sender_id, session_ts, start)
                rows = conn.execute(q["window"], {"sid": sender_id, "first": start}).all()
            else:
                rows = conn.execute(q["session"], params).all()
        if not rows or not self.domain:
            return None
        window = [json.loads(r[1]) for r in rows]
        events = window
        if prefix:
            at = window[0].get("timestamp")
            restored = [
                {**data, "timestamp": at}
                if data
                else {"event": "action", "name": "action_listen", "timestamp": at}
                for _kind, data in prefix
            ]
            events = restored + window
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        setattr(tracker, LOADED_ATTR, len(tracker.events))
        return tracker

    def erase(self, sender_id: str) -> int:
        """Delete every stored event of a conversation (the customer's erasure request)."""
        t = self.SQLEvent.__table__
        with self.engine.begin() as conn:
            deleted = conn.execute(t.delete().where(t.c.sender_id == sender_id)).rowcount
        self._prefix_cache.pop(sender_id, None)
        logger.info("conversation erased at the customer's request: %d events deleted", deleted)
        return int(deleted or 0)

    async def create_tracker(self, sender_id: str, append_action_listen: bool = True) -> DialogueStateTracker:
        """Rasa's `create_tracker`, called when `retrieve` found no event of the conversation (it
        returns None only then, a domain being set): the new tracker counts as loaded with 0
        stored events, so its first save is the one multi-row insert of `save` below instead of
        Rasa's ORM save, which first counts the stored rows (1.4 % of a Rasa worker's time with a
        new conversation every 8 turns, py-spy)."""
        tracker = self.init_tracker(sender_id)
        if self.domain:
            setattr(tracker, LOADED_ATTR, 0)
        if append_action_listen:
            tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        await self.save(tracker)
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        loaded = getattr(tracker, LOADED_ATTR, None)
        turn = list(tracker.events)[loaded or 0 :]
        if any(getattr(e, "key", None) == FORGET_SLOT and getattr(e, "value", None) is True for e in turn):
            # Nothing of this conversation is kept, not even the turn that asked for it; the next
            # message starts a new conversation. The event broker is not told the erased turn.
            self.erase(tracker.sender_id)
            setattr(tracker, LOADED_ATTR, len(tracker.events))
            return
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
                conn.execute(self._prepared["insert"], rows)
        setattr(tracker, LOADED_ATTR, len(tracker.events))
