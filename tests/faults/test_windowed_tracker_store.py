"""The windowed tracker store (deploy/windowed_tracker_store.py) keeps the state of the whole
conversation while loading only its last turns, and stores every event exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from deploy.windowed_tracker_store import WindowedSQLTrackerStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def _conversation(rng: random.Random, turns: int) -> list[dict[str, Any]]:
    """A long session with slot changes, a form, a handoff pause and fallback rewinds."""
    t = 1_700_000_000.0
    ev: list[dict[str, Any]] = [
        {"event": "action", "name": "action_session_start", "timestamp": t},
        {"event": "session_started", "timestamp": t},
        {"event": "action", "name": "action_listen", "timestamp": t},
    ]
    for i in range(turns):
        t += 1
        intent = rng.choice(["greet", "inform", "track_request", "thank"])
        ev.append(
            {
                "event": "user",
                "text": f"tin nhắn {i}",
                "timestamp": t,
                "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": []},
            }
        )
        ev.append({"event": "user_featurization", "use_text_for_featurization": False, "timestamp": t})
        roll = rng.random()
        if roll < 0.15:  # fallback: utter, then revert the user message
            ev += [
                {"event": "action", "name": "action_default_fallback", "timestamp": t},
                {"event": "bot", "text": "xin lỗi", "timestamp": t},
                {"event": "rewind", "timestamp": t},
                {"event": "action", "name": "action_listen", "timestamp": t},
            ]  # as Rasa logs it
            continue
        if roll < 0.3:
            ev.append({"event": "slot", "name": "power_unit", "value": f"PC0{i % 9}TK", "timestamp": t})
        elif roll < 0.4:
            ev += [
                {"event": "action", "name": "find_request_form", "timestamp": t},
                {"event": "active_loop", "name": "find_request_form", "timestamp": t},
                {"event": "slot", "name": "requested_slot", "value": "customer_name", "timestamp": t},
            ]
        elif roll < 0.5:
            ev += [
                {"event": "active_loop", "name": None, "timestamp": t},
                {"event": "slot", "name": "requested_slot", "value": None, "timestamp": t},
            ]
        elif roll < 0.55:
            ev.append({"event": "pause", "timestamp": t})
        elif roll < 0.6:
            ev.append({"event": "resume", "timestamp": t})
        elif roll < 0.65:
            ev += [
                {"event": "slot", "name": "customer_name", "value": "An", "timestamp": t},
                {"event": "undo", "timestamp": t},
            ]
        if i == 3:
            ev.append({"event": "slot", "name": "request_code", "value": "PC05TK0000123", "timestamp": t})
        ev += [
            {"event": "action", "name": "utter_greet", "timestamp": t},
            {"event": "bot", "text": f"trả lời {i}", "timestamp": t},
            {"event": "action", "name": "action_listen", "timestamp": t},
        ]
    return ev


async def test_window_keeps_the_state_and_saves_every_event_once(tmp_path: Path, domain: Domain) -> None:
    db = str(tmp_path / "trackers.db")
    full_store = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, window_turns=6)
    checked = 0
    for seed in range(8):
        sender = f"conv-{seed}"
        events = _conversation(random.Random(seed), 60)
        await full_store.save(DialogueStateTracker.from_dict(sender, events, domain.slots))
        full = await full_store.retrieve(sender)
        win = await store.retrieve(sender)
        assert full is not None and win is not None
        assert len(win.events) < len(full.events) / 4
        assert win.current_slot_values() == full.current_slot_values()
        assert win.active_loop_name == full.active_loop_name
        assert win.is_paused() == full.is_paused()
        assert win.latest_message.text == full.latest_message.text
        # What the policies featurize: the recent states are the same.
        assert win.past_states(domain)[-6:] == full.past_states(domain)[-6:]
        checked += 1

        # A new turn on the windowed tracker is stored once, after everything that was there.
        from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

        new = [
            UserUttered("tiếp", {"name": "greet", "confidence": 1.0}),
            SlotSet("power_unit", "PC04HC"),
            ActionExecuted("utter_greet"),
            BotUttered("chào"),
            ActionExecuted("action_listen"),
        ]
        for e in new:
            win.update(e)
        await store.save(win)
        await store.save(win)  # saving twice must not duplicate
        after = await full_store.retrieve_full_tracker(sender)
        assert after is not None
        assert len(after.events) == len(full.events) + len(new)
        assert after.current_slot_values()["power_unit"] == "PC04HC"
        again = await store.retrieve(sender)
        assert again is not None and again.current_slot_values() == after.current_slot_values()
    print(
        f"\n[window] {checked} conversations of 60 turns: window of 6 turns keeps slots, form, "
        "pause flag and the last states; events stored once"
    )


def test_create_tracker_is_rasas_own_as_pinned() -> None:
    from deploy.windowed_tracker_store import CREATE_TRACKER_PIN

    assert CREATE_TRACKER_PIN.drift() is None


async def test_a_new_conversation_is_stored_as_rasas_store_stores_it_in_one_insert(
    tmp_path: Path, domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`get_or_create_tracker` of a new conversation, then a turn: the same rows as Rasa's own SQL
    store writes (timestamps aside), and never through Rasa's counting ORM save."""
    import sqlite3

    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered

    rasa_db, window_db = tmp_path / "rasa.db", tmp_path / "window.db"
    rasa_store = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(rasa_db))
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(window_db), window_turns=3)
    rasa_saves = []
    stock_save = SQLTrackerStore.save

    async def counted(self: SQLTrackerStore, tracker: DialogueStateTracker) -> None:
        rasa_saves.append(type(self).__name__)
        await stock_save(self, tracker)

    monkeypatch.setattr(SQLTrackerStore, "save", counted)
    for st in (rasa_store, store):
        tracker = await st.get_or_create_tracker("new-customer")
        assert [e.type_name for e in tracker.events] == ["action"]
        for e in (
            UserUttered("xin chào", {"name": "greet", "confidence": 1.0}),
            SlotSet("power_unit", "PC05TK"),
            ActionExecuted("utter_greet"),
        ):
            tracker.update(e)
        await st.save(tracker)
    assert rasa_saves == ["SQLTrackerStore", "SQLTrackerStore"]  # the windowed store never used it

    def rows(db: Path) -> list[tuple[Any, ...]]:
        with sqlite3.connect(db) as conn:
            found = conn.execute(
                "select sender_id, type_name, intent_name, action_name, data from events order by id"
            ).fetchall()
        out = []
        for sender, kind, intent, action, data in found:
            payload = json.loads(data)
            payload.pop("timestamp", None)
            out.append((sender, kind, intent, action, payload))
        return out

    assert rows(window_db) == rows(rasa_db)
    assert [r[1] for r in rows(window_db)] == ["action", "user", "slot", "action"]
    again = await store.get_or_create_tracker("new-customer")
    assert again.current_slot_values()["power_unit"] == "PC05TK"
    assert len(rows(window_db)) == 4  # an existing conversation is loaded, not created again


def test_rasa_speedups_keep_behaviour() -> None:
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import Event, SlotSet, UserUttered

    from deploy import rasa_speedups

    assert rasa_speedups.install()
    assert Event.resolve_by_type("slot") is SlotSet
    assert Event.resolve_by_type("user") is UserUttered
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")
    action = RemoteAction("action_x", None)
    assert action._validate_action_result(
        {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "hi"}]}
    )
    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})


async def test_sqlite_store_is_wal_and_loads_only_the_latest_session(tmp_path: Path, domain: Domain) -> None:
    import sqlite3

    db = tmp_path / "rasa_events.db"
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=str(db), window_turns=5)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first = _conversation(random.Random(1), 4)
    t = max(e["timestamp"] for e in first) + 3600
    second = [
        {"event": "action", "name": "action_session_start", "timestamp": t},
        {"event": "session_started", "timestamp": t},
        {"event": "action", "name": "action_listen", "timestamp": t},
        {
            "event": "user",
            "text": "phiên mới",
            "timestamp": t + 1,
            "parse_data": {"intent": {"name": "greet"}},
        },
    ]
    await store.save(DialogueStateTracker.from_dict("c", first + second, domain.slots))
    tracker = await store.retrieve("c")
    assert tracker is not None
    assert [e.text for e in tracker.events if e.type_name == "user"] == ["phiên mới"]
    full = await store.retrieve_full_tracker("c")
    assert full is not None and len(full.events) == len(first) + len(second)
    # The desk's reader: a read-only connection sees every event, in id order, while Rasa has the file open.
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = ro.execute("SELECT id, sender_id, data FROM events ORDER BY id").fetchall()
    finally:
        ro.close()
    assert len(rows) == len(first) + len(second) and {r[1] for r in rows} == {"c"}


async def test_sqlite_file_keeps_one_connection_and_drops_it_after_a_fork(
    tmp_path: Path, domain: Domain
) -> None:
    """Opening the file per call cost 12 % of a turn (SQLAlchemy 1.4's NullPool); a pooled
    connection must still never be shared with a forked child."""
    import sqlalchemy as sa

    db = str(tmp_path / "t.db")
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, window_turns=3)
    opened: list[int] = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(os.getpid()))
    events = _conversation(random.Random(3), 12)
    await store.save(DialogueStateTracker.from_dict("pool", events, domain.slots))
    for _ in range(20):
        tracker = await store.retrieve("pool")
        assert tracker is not None
        await store.save(tracker)
    assert len(opened) <= 1  # at most the one connection the pool did not have yet

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must open its own connection and read the same conversation
        try:
            child_tracker = asyncio.run(store.retrieve("pool"))
            ok = child_tracker is not None and opened[-1] == os.getpid()
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    await asyncio.to_thread(os.waitpid, pid, 0)
    assert answer == b"ok"
    assert await store.retrieve("pool") is not None  # the parent's connection still works


async def test_turn_by_turn_the_cached_prefix_matches_a_cold_read(tmp_path: Path, domain: Domain) -> None:
    """The pre-window state is carried forward in memory; it must equal a fresh full computation."""
    from rasa.shared.core.events import Event

    db = str(tmp_path / "trackers.db")
    full_store = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    store = WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, window_turns=3)
    events = _conversation(random.Random(7), 40)
    starts = [i for i, e in enumerate(events) if e["event"] == "user"] + [len(events)]
    await store.save(DialogueStateTracker.from_dict("turns", events[: starts[0]], domain.slots))
    for a, b in zip(starts, starts[1:], strict=False):
        tracker = await store.retrieve("turns")
        assert tracker is not None
        for e in events[a:b]:
            tracker.update(Event.from_parameters(e))
        await store.save(tracker)
        warm = await store.retrieve("turns")
        cold = await WindowedSQLTrackerStore(domain=domain, dialect="sqlite", db=db, window_turns=3).retrieve(
            "turns"
        )
        full = await full_store.retrieve("turns")
        assert warm and cold and full
        for t in (warm, cold):
            assert t.current_slot_values() == full.current_slot_values()
            assert t.active_loop_name == full.active_loop_name
            assert t.is_paused() == full.is_paused()
        assert [e.as_dict() for e in warm.events] == [e.as_dict() for e in cold.events]
    assert len(store._prefix_cache) == 1


def test_domain_is_empty_is_cached_and_unchanged(domain: Domain) -> None:
    from deploy import rasa_speedups

    assert rasa_speedups.install()
    empty = Domain.empty()
    assert empty.is_empty() is True and empty.is_empty() is True
    assert domain.is_empty() is False and domain.__dict__["_cskh_is_empty"] is False


def test_gc_threshold_and_connection_closing_are_settings() -> None:
    import subprocess
    import sys

    from deploy import rasa_speedups

    # Through the installer that rasa_speedups.install() runs, with these two patches only: the
    # others import Rasa and TensorFlow (13 s a process instead of 0.4 s).
    names = ("rasa_speedups.tune_gc", "rasa_speedups.close_connections_now_and_then")
    assert set(names) <= {p.name for p in rasa_speedups.PATCHES}
    code = (
        "import gc, sanic.http as h; orig = h.Http.http1_request_header; "
        "from deploy import rasa_patches, rasa_speedups; "
        f"assert not rasa_patches.install([p for p in rasa_speedups.PATCHES if p.name in {names!r}]); "
        "print(gc.get_threshold()[0], h.Http.http1_request_header is not orig)"
    )

    def run(**env: str) -> list[str]:
        full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        out = subprocess.run(
            [sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True, cwd=ROOT
        )
        return out.stdout.split()[-2:]

    assert run(RASA_GC_THRESHOLD="0", RASA_REQUESTS_PER_CONNECTION="") == ["700", "False"]
    assert run(RASA_GC_THRESHOLD="0", RASA_REQUESTS_PER_CONNECTION="zero") == ["700", "False"]
    assert run(RASA_GC_THRESHOLD="50000", RASA_REQUESTS_PER_CONNECTION="20") == ["50000", "True"]
