"""Satisfaction survey after a hand-back (agent_desk/csat.py).

Rasa is replaced by a recorder of the events the desk appends; the customer's answers are handed to
the desk's broker sink (`Desk.ingest`) as Rasa would stream them. The bot side (its core fallback
stays silent on the `csat` intent) is checked on the action itself.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from agent_desk import csat, db, transcript
from agent_desk.config import ROOT
from agent_desk.keys import DESK
from bot.actions.general import ActionNluFallback
from common.rasa_client import RasaError
from tests.desk.conftest import add_account, desk_settings, login

SENDER = "zalo-1234567"


class FakeRasa:
    """Records what the desk appends to trackers and the intents it passes on."""

    def __init__(self) -> None:
        self.appended: list[tuple[str, list[dict[str, Any]]]] = []
        self.triggered: list[tuple[str, str, Any]] = []
        self.down = False

    async def tracker(self, sender_id: str) -> dict[str, Any]:
        return {"events": [], "latest_input_channel": "zalo", "slots": {}}

    async def append_events(self, sender_id: str, events: list[dict[str, Any]], push: bool = True) -> dict:
        if self.down:
            raise RasaError("Không kết nối được tới Rasa")
        self.appended.append((sender_id, events))
        return {}

    async def trigger_intent(self, sender_id: str, intent: str, entities: Any) -> dict:
        self.triggered.append((sender_id, intent, entities))
        return {}

    def bot_lines(self, since: int = 0) -> list[dict[str, Any]]:
        return [e for _, events in self.appended[since:] for e in events if e["event"] == "bot"]

    def kinds(self, index: int = -1) -> list[str]:
        return [e["event"] + ":" + (e.get("name") or "") for e in self.appended[index][1]]


def user_event(text: str, ts: float, intent: str = "inform", confidence: float = 0.9, **extra: Any) -> dict:
    return {
        "sender_id": SENDER,
        "event": "user",
        "timestamp": ts,
        "text": text,
        "input_channel": "zalo",
        "parse_data": {
            "intent": {"name": intent, "confidence": confidence},
            "entities": extra.get("entities", []),
        },
    }


def score_event(score: int, ts: float) -> dict:
    return user_event(
        f'/csat{{"csat_score":"{score}"}}',
        ts,
        intent="csat",
        confidence=1.0,
        entities=[{"entity": "csat_score", "value": str(score), "start": 5, "end": 23}],
    )


async def request_human(desk, sender: str = SENDER) -> int:
    now = time.time()
    for event in (
        {
            "sender_id": sender,
            "event": "user",
            "timestamp": now,
            "text": "gặp nhân viên",
            "input_channel": "zalo",
        },
        {"sender_id": sender, "event": "action", "timestamp": now + 0.1, "name": "action_request_handoff"},
        {
            "sender_id": sender,
            "event": "slot",
            "timestamp": now + 0.2,
            "name": "handoff_requested",
            "value": True,
        },
    ):
        await desk.ingest(event)
    return next(h.id for h in await desk.open_handoffs() if h.sender_id == sender)


@pytest.fixture
async def desk_client(desk_factory, tmp_path):
    client = await desk_factory(desk_settings(tmp_path), background=False)
    client.app[DESK].rasa = FakeRasa()
    await add_account(client, "lan", name="Lan")
    await add_account(client, "hung", role="supervisor", name="Hùng")
    return client


async def handed_back(client, sender: str = SENDER) -> tuple[int, str]:
    """A conversation taken, answered and handed back by Lan; returns (handoff id, Lan's CSRF token)."""
    desk = client.app[DESK]
    handoff_id = await request_human(desk, sender)
    token = await login(client, "lan")
    resp = await client.post(
        f"/conversations/{handoff_id}/claim", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    for text in ("Dạ em chào anh/chị", "Em kiểm tra giúp anh/chị ạ"):
        resp = await client.post(
            f"/conversations/{handoff_id}/reply",
            json={"text": text},
            headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"},
        )
        assert resp.status == 200, await resp.text()
    resp = await client.post(
        f"/conversations/{handoff_id}/handback",
        data={"tag": "resolved", "csrf_token": token},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return handoff_id, token


async def survey_rows(client) -> list[Any]:
    async with client.app[DESK].engine.connect() as conn:
        return (await conn.execute(sa.select(db.csat).order_by(db.csat.c.id))).all()


async def lan_id(client) -> int:
    async with client.app[DESK].engine.connect() as conn:
        return await conn.scalar(sa.select(db.agents.c.id).where(db.agents.c.username == "lan"))


def test_domain_carries_the_survey_contract() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert "csat" in domain["intents"] and "csat_score" in domain["entities"]
    for name in (csat.ASK, csat.THANKS, csat.COMMENT_THANKS, csat.SKIPPED):
        assert domain["responses"][name][0]["text"]
    assert [b["payload"] for b in domain["responses"][csat.THANKS][0]["buttons"]] == ["/deny"]


async def test_hand_back_asks_with_five_buttons(desk_client) -> None:
    client = desk_client
    fake: FakeRasa = client.app[DESK].rasa
    handoff_id, _ = await handed_back(client)
    kinds = fake.kinds()
    assert kinds[0] == "resume:" and kinds[-1] == "action:action_listen"
    assert "action:utter_csat_ask" in kinds and kinds.index("action:utter_handoff_returned") < kinds.index(
        "action:utter_csat_ask"
    )
    ask = fake.bot_lines()[-1]
    assert ask["metadata"]["utter_action"] == "utter_csat_ask" and "Lan" in ask["text"]
    payloads = [b["payload"] for b in ask["data"]["buttons"]]
    assert payloads == [f'/csat{{"csat_score":"{n}"}}' for n in range(1, 6)]
    (row,) = await survey_rows(client)
    assert row.handoff_id == handoff_id and row.sender_id == SENDER and row.agent_id == await lan_id(client)
    assert row.score is None and row.comment is None and row.asked_at > 0
    # The first agent reply is kept (reports: first response time), not the later ones.
    async with client.app[DESK].engine.connect() as conn:
        handoff = (await conn.execute(sa.select(db.handoffs).where(db.handoffs.c.id == handoff_id))).one()
    assert handoff.claimed_at <= handoff.first_reply_at < handoff.agent_activity_at


async def test_score_is_stored_with_agent_and_handoff_and_the_comment_shown_masked(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    handoff_id, _ = await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    before = len(fake.appended)
    await desk.ingest(score_event(4, asked + 5))
    (row,) = await survey_rows(client)
    assert (row.score, row.handoff_id, row.agent_id) == (4, handoff_id, await lan_id(client))
    assert row.answered_at == asked + 5 and row.comment_until is not None
    # The bot is paused for the comment and the customer is thanked, with a way to skip.
    assert fake.kinds()[0] == "pause:" and fake.appended[-1][1][0]["metadata"] == csat.PAUSE_MARK
    thanks = fake.bot_lines(before)[-1]
    assert thanks["metadata"]["utter_action"] == csat.THANKS
    assert [b["payload"] for b in thanks["data"]["buttons"]] == ["/deny"]
    shown = transcript.message_from_event({"event": "pause", "metadata": csat.PAUSE_MARK})
    assert shown is not None and "khảo sát" in shown["text"]

    comment = "Nhân viên nhiệt tình, gọi lại cho tôi số 0905 123 456 hoặc an.nguyen@gmail.com"
    await desk.ingest(user_event(comment, asked + 30, intent="nlu_fallback", confidence=0.3))
    (row,) = await survey_rows(client)
    assert row.comment == comment and row.comment_until is None and row.commented_at == asked + 30
    kinds = fake.kinds()
    assert kinds[0] == "resume:" and "action:utter_csat_comment_thanks" in kinds
    assert kinds[-1] == "action:action_listen"

    await login(client, "hung")
    page = await (await client.get("/reports")).text()
    assert "Nhân viên nhiệt tình" in page and f"/conversations/{handoff_id}" in page
    assert "0905 123 456" not in page and "an.nguyen@gmail.com" not in page
    # A later message is not a comment any more.
    await desk.ingest(user_event("tra cứu hồ sơ", asked + 60))
    assert (await survey_rows(client))[0].comment == comment


async def test_no_survey_after_a_queue_timeout_or_a_withdrawal(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    handoff_id = await request_human(desk)
    done = await desk.sweep(now=time.time() + desk.settings.queue_timeout + 1)
    assert done["timed_out"] == 1 and (await desk.get(handoff_id)).status == "timed_out"
    assert "action:utter_handoff_timeout" in fake.kinds()
    assert not [b for b in fake.bot_lines() if b["metadata"].get("utter_action") == csat.ASK]

    other = "telegram-99"
    await request_human(desk, other)
    await desk.ingest(
        {
            "sender_id": other,
            "event": "slot",
            "timestamp": time.time() + 1,
            "name": "handoff_requested",
            "value": False,
        }
    )
    assert other not in {h.sender_id for h in await desk.open_handoffs()}
    assert await survey_rows(client) == []
    # A score button pressed in a conversation without a survey is ignored.
    await desk.ingest(score_event(5, time.time() + 2))
    assert await survey_rows(client) == []


async def test_repeated_answers_do_not_duplicate(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    before = len(fake.appended)
    first = score_event(2, asked + 5)
    await desk.ingest(first)
    await desk.ingest(first)  # the broker delivers it again
    assert len(fake.appended) == before + 1  # thanked once
    await desk.ingest(score_event(3, asked + 8))  # changed their mind while the comment is awaited
    rows = await survey_rows(client)
    assert len(rows) == 1 and rows[0].score == 3 and rows[0].answered_at == asked + 5
    await desk.ingest(user_event("/deny", asked + 10, intent="deny", confidence=1.0))  # "Bỏ qua"
    assert "action:utter_anything_else" in fake.kinds() and fake.kinds()[0] == "resume:"
    appended = len(fake.appended)
    await desk.ingest(score_event(5, asked + 20))  # after the survey ended: nothing
    rows = await survey_rows(client)
    assert len(rows) == 1 and rows[0].score == 3 and rows[0].comment is None
    assert len(fake.appended) == appended
    # An event older than the question is not an answer to it.
    await desk.ingest(score_event(1, asked - 100))
    assert (await survey_rows(client))[0].score == 3


async def test_no_comment_in_time_resumes_the_bot_silently(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    await desk.ingest(score_event(5, asked + 5))
    fake.down = True  # Rasa unreachable: the bot is resumed once it answers
    later = time.time() + desk.settings.csat_comment_window + 1
    await desk.sweep(now=later)
    assert (await survey_rows(client))[0].comment_until is not None
    fake.down = False
    await desk.sweep(now=later)
    assert fake.kinds() == ["resume:", "action:action_listen"]
    row = (await survey_rows(client))[0]
    assert row.comment_until is None and row.score == 5 and row.comment is None
    await desk.ingest(user_event("cảm ơn", later + 1, intent="thank"))
    assert (await survey_rows(client))[0].comment is None


async def test_a_button_or_a_request_for_a_human_is_passed_to_the_bot(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    await desk.ingest(score_event(1, asked + 5))
    await desk.ingest(user_event("cho tôi gặp nhân viên", asked + 9, intent="human_handoff", confidence=0.97))
    assert fake.kinds() == ["resume:", "action:action_listen"]
    assert fake.triggered == [(SENDER, "human_handoff", [])]
    row = (await survey_rows(client))[0]
    assert row.score == 1 and row.comment is None and row.comment_until is None


async def test_an_answer_while_an_agent_has_the_conversation_again_is_stored_quietly(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    await request_human(desk)  # asks for a human again before rating
    appended = len(fake.appended)
    await desk.ingest(score_event(4, time.time() + 1))
    row = (await survey_rows(client))[0]
    assert row.score == 4 and row.answered_at > asked and row.comment_until is None
    assert len(fake.appended) == appended  # no pause, no message into the new handoff


async def test_rasa_down_when_the_comment_comes(desk_client) -> None:
    client = desk_client
    desk = client.app[DESK]
    fake: FakeRasa = desk.rasa
    await handed_back(client)
    asked = (await survey_rows(client))[0].asked_at
    await desk.ingest(score_event(3, asked + 5))
    fake.down = True
    await desk.ingest(user_event("Ổn", asked + 9, intent="affirm"))
    row = (await survey_rows(client))[0]
    assert row.comment == "Ổn" and row.comment_until is not None  # stored; the bot still to resume
    await desk.ingest(user_event("alo", asked + 12))
    assert (await survey_rows(client))[0].comment == "Ổn"
    fake.down = False
    await desk.sweep()
    assert fake.kinds() == ["resume:", "action:action_listen"]
    assert (await survey_rows(client))[0].comment_until is None


async def test_survey_can_be_switched_off(desk_factory, tmp_path) -> None:
    client = await desk_factory(desk_settings(tmp_path, env={"DESK_CSAT_ENABLED": "0"}), background=False)
    client.app[DESK].rasa = FakeRasa()
    await add_account(client, "lan", name="Lan")
    await handed_back(client)
    assert "action:utter_csat_ask" not in client.app[DESK].rasa.kinds()
    assert await survey_rows(client) == []


async def test_agents_see_no_reports(desk_client) -> None:
    client = desk_client
    await login(client, "lan")
    assert (await client.get("/reports")).status == 403
    assert (await client.get("/reports.csv")).status == 403
    assert 'href="/reports"' not in await (await client.get("/")).text()


async def test_the_bot_stays_silent_on_a_survey_answer() -> None:
    text = '/csat{"csat_score":"5"}'
    latest = {"text": text, "intent": {"name": "csat", "confidence": 1.0}, "entities": [], "metadata": {}}
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest},
    ]
    tracker = Tracker("zalo-1", {}, latest, events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    assert await ActionNluFallback().run(dispatcher, tracker, {}) == []
    assert dispatcher.messages == []


def test_scores_are_read_from_the_payload() -> None:
    assert csat.payload_score('/csat{"csat_score":"3"}') == 3
    assert csat.payload_score('/csat{"csat_score": 5}') == 5
    assert csat.payload_score('/csat{"csat_score":"7"}') is None
    assert (
        csat.event_score({"text": "x", "parse_data": {"entities": [{"entity": "csat_score", "value": "²"}]}})
        is None
    )
    assert csat.clean_comment("  a\x00b  " + "x" * 2000) == "ab  " + "x" * (csat.MAX_COMMENT - 4)
