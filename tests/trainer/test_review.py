"""`make review`: poorly understood messages from what Rasa's SQL event broker / tracker store wrote."""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.brokers.sql import SQLEventBroker
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered

from tests.trainer.conftest import run_cli
from trainer import nlucsv, review
from trainer.settings import Settings

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def user(
    text: str, intent: str, confidence: float, ranking: list[tuple[str, float]] | None = None
) -> UserUttered:
    ranking_dicts = [{"name": n, "confidence": c} for n, c in (ranking or [(intent, confidence)])]
    parse = {
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "intent_ranking": ranking_dicts,
    }
    return UserUttered(text, intent=parse["intent"], parse_data=parse)


def conversations() -> dict[str, list[Event]]:
    return {
        "zalo-111": [
            user("xin chào", "greet", 0.98),
            ActionExecuted("utter_greet"),
            BotUttered("Xin chào anh/chị"),
            # Low confidence.
            user("cho e hỏi cái vụ điện nhà e á", "track_request", 0.41),
            ActionExecuted("action_listen"),
            # FallbackClassifier: the model's own guess is in the ranking.
            user(
                "sđt của tôi là 0905123456 mail an@example.com",
                "nlu_fallback",
                0.5,
                [("nlu_fallback", 0.5), ("inform", 0.33)],
            ),  # fmt: skip
            ActionExecuted("action_default_fallback"),
            # Confident, then the customer asks for a person: the message before is the one that failed.
            user("hợp đồng sai tên rồi", "sign_documents", 0.72),
            user("cho gặp nhân viên", "human_handoff", 0.97),
            ActionExecuted("action_request_handoff"),
        ],
        "tg-222": [
            user("/greet", "greet", 1.0),  # a button payload, not typed
            user("mã otp 123987 không tới", "resend_otp", 0.35),
            user("Xin chào", "greet", 0.2),  # already in the training data
            user("mã otp 654321 không tới", "resend_otp", 0.3),  # same once masked: one row
            user("ký bằng usb token được không", "sign_usb_token", 0.88),
            ActionExecuted("action_request_handoff"),  # handed over after a confident answer: exported
        ],
    }


def publish_all(broker: SQLEventBroker) -> None:
    for sender, events in conversations().items():
        for i, ev in enumerate(events):
            ev.timestamp = 1_764_000_000 + i  # 2025-11-24 16:00 UTC
            broker.publish({**ev.as_dict(), "sender_id": sender})


def read_csv(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


EXPECTED = [
    ("cho e hỏi cái vụ điện nhà e á", "track_request", "0.41", "zalo-111", "low_confidence"),
    (
        "sđt của tôi là 0900000000 mail email@example.com",
        "inform",
        "0.33",
        "zalo-111",
        "nlu_fallback,fallback",
    ),
    ("hợp đồng sai tên rồi", "sign_documents", "0.72", "zalo-111", "handoff"),
    ("mã otp 123456 không tới", "resend_otp", "0.35", "tg-222", "low_confidence"),
    ("ký bằng usb token được không", "sign_usb_token", "0.88", "tg-222", "handoff"),
]


def check_rows(rows: list[dict[str, str]]) -> None:
    assert list(rows[0]) == ["text", "predicted_intent", "confidence", "conversation", "timestamp", "label",
                             "entities", "reason"]  # fmt: skip
    got = [(r["text"], r["predicted_intent"], r["confidence"], r["conversation"], r["reason"]) for r in rows]
    assert got == EXPECTED
    assert all(r["label"] == "" and r["entities"] == "" for r in rows)
    assert rows[0]["timestamp"] == "2025-11-24 23:00:03"  # local time, Asia/Ho_Chi_Minh
    assert not any("0905123456" in r["text"] or "an@example.com" in r["text"] for r in rows)


def test_from_the_sql_event_broker(project: Path, settings: Settings, tmp_path: Path) -> None:
    db = tmp_path / "rasa_events.db"
    publish_all(SQLEventBroker(db=str(db)))
    out = tmp_path / "review.csv"
    done = run_cli(project, "review", "--db", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Đã ghi 5 câu" in done.stdout
    check_rows(read_csv(out))


def test_labelled_review_goes_back_in(project: Path, settings: Settings, tmp_path: Path) -> None:
    db = tmp_path / "rasa_events.db"
    publish_all(SQLEventBroker(db=str(db)))
    out = tmp_path / "review.csv"
    review.export_review(settings, out, db=str(db))
    rows = read_csv(out)
    rows[0]["label"] = "track_request"
    rows[3]["label"] = "goodbye"  # the trainer may also rewrite the text before labelling it
    rows[3]["text"] = "thôi chào nhé, để mai tôi hỏi tiếp"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
    w.writeheader()
    w.writerows(rows)
    out.write_bytes(buf.getvalue().encode("utf-8-sig"))
    summary = nlucsv.import_csv(settings, out, with_rasa=False)
    assert (summary.added, summary.skipped_unlabelled) == (2, 3)
    lookup = (project / "bot/data/nlu/lookup.yml").read_text(encoding="utf-8")
    assert "    - cho e hỏi cái vụ điện nhà e á\n\n- regex: request_code" in lookup


def test_from_the_sql_tracker_store(project: Path, settings: Settings, tmp_path: Path) -> None:
    """Rasa's SQL tracker store has its own `events` table layout; the same export works on it."""
    import asyncio

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    db = tmp_path / "tracker.db"
    store = SQLTrackerStore(dialect="sqlite", db=str(db))

    async def save() -> None:
        for sender, events in conversations().items():
            for i, ev in enumerate(events):
                ev.timestamp = 1_764_000_000 + i
            await store.save(DialogueStateTracker.from_events(sender, events))

    asyncio.run(save())
    out = tmp_path / "review.csv"
    assert review.export_review(settings, out, db=str(db)) == 5
    check_rows(read_csv(out))


@pytest.mark.postgres
def test_from_postgresql_tracker_store(project: Path, settings: Settings, tmp_path: Path) -> None:
    import asyncio

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker

    name = f"trainer_review_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        parsed = sa.engine.make_url(url)
        store = SQLTrackerStore(
            dialect="postgresql", host=parsed.host, port=parsed.port, db=name, username=parsed.username
        )

        async def save() -> None:
            for sender, events in conversations().items():
                for i, ev in enumerate(events):
                    ev.timestamp = 1_764_000_000 + i
                await store.save(DialogueStateTracker.from_events(sender, events))

        asyncio.run(save())
        store.engine.dispose()
        out = tmp_path / "review.csv"
        assert review.export_review(settings, out, db=url) == 5
        check_rows(read_csv(out))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_missing_database_is_a_clear_error_and_creates_nothing(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    done = run_cli(project, "review", "--db", str(db))
    assert done.returncode == 2
    assert "không thấy cơ sở dữ liệu sự kiện" in done.stderr
    assert not db.exists()


def test_database_without_events_table(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    engine = sa.create_engine(f"sqlite:///{db}", future=True)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE something (id INTEGER)"))
    engine.dispose()
    done = run_cli(project, "review", "--db", str(db))
    assert done.returncode == 2 and "không đọc được bảng 'events'" in done.stderr


def test_masking() -> None:
    assert review.mask("gọi 0905 123 456 hoặc +84905123456") == "gọi 0900000000 hoặc 0900000000"
    assert review.mask("mã 123456, hồ sơ PC05TK0000123") == "mã 123456, hồ sơ PC05TK0000123"
    assert review.mask("otp 987654") == "otp 123456"
    assert review.mask("ma la 98 76 54 a") == "ma la 123456 a"  # the groupings the bot accepts
    assert review.mask("987-654") == "123456"
    assert review.mask("email: nguyen.an@evn.com.vn") == "email: email@example.com"
