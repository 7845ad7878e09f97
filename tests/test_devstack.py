"""devstack helpers that `make run` relies on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from devstack import processes


def _db(path: Path, ddl: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        conn.execute("INSERT INTO events (sender_id, data) VALUES ('c1', '{}')")
    return path


def test_an_old_broker_events_file_is_moved_aside_not_deleted(tmp_path: Path) -> None:
    db = _db(
        tmp_path / "rasa_events.db", "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)"
    )
    moved = processes.retire_broker_events_db(db)
    assert moved is not None and moved.exists() and not db.exists()
    assert moved.name.startswith("rasa_events.db.broker-")
    with sqlite3.connect(moved) as conn:
        assert conn.execute("SELECT sender_id FROM events").fetchall() == [("c1",)]


def test_a_tracker_store_file_and_a_missing_file_are_left_alone(tmp_path: Path) -> None:
    db = _db(
        tmp_path / "rasa_events.db",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, data TEXT)",
    )
    assert processes.retire_broker_events_db(db) is None and db.exists()
    assert processes.retire_broker_events_db(tmp_path / "absent.db") is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert processes.retire_broker_events_db(empty) is None and empty.exists()
