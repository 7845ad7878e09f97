"""Issue 18: "tôi đợi bao lâu nữa?" while waiting for a person gets the place in the queue and the
expected wait, from a real desk app (its own database) through the action server's desk client."""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from rasa_sdk.executor import CollectingDispatcher

from agent_desk import db
from agent_desk.app import create_app
from agent_desk.keys import DESK
from bot.actions import desk_api
from bot.actions.general import ActionRequestHandoff
from bot.actions.queue_wait import ActionQueueWait
from tests.actions.conftest import make_tracker, responses
from tests.desk.conftest import desk_settings, make_agent, queue

SENDER = "zalo-8800123"


@pytest.fixture
async def desk(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[web.Application]:
    app = create_app(desk_settings(tmp_path), background=False)
    server = await aiohttp_server(app)
    os.environ["DESK_URL"] = str(server.make_url("")).rstrip("/")
    desk_api.reset_desk_api()
    yield app
    desk_api.reset_desk_api()


async def ask(slots: dict[str, Any] | None = None, action: Any = None) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots, text="tôi đợi bao lâu nữa", intent="ask_wait_time", sender_id=SENDER)
    await (action or ActionQueueWait()).run(dispatcher, tracker, {})
    return dispatcher


async def taken_in_the_last_hour(app: web.Application, count: int) -> None:
    now = time.time()
    async with app[DESK].engine.begin() as conn:
        for i in range(count):
            at = now - 600 * (i + 1)
            await conn.execute(
                db.handoffs.insert().values(
                    sender_id=f"earlier-{i}",
                    status="closed",
                    requested_at=at - 120,
                    queued_at=at - 120,
                    claimed_at=at,
                    last_messages="[]",
                )
            )


def placeholders(domain: dict[str, Any], response: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", domain["responses"][response][0]["text"]))


async def test_second_in_line_hears_the_place_and_the_minutes(desk, domain) -> None:
    await queue(desk[DESK], "zalo-before-me")
    await queue(desk[DESK], SENDER)
    await make_agent(desk[DESK], "lan")
    await taken_in_the_last_hour(desk, 4)  # one every 15 minutes

    dispatcher = await ask({"handoff_requested": True})
    [message] = dispatcher.messages
    assert message["response"] == "utter_queue_place"
    assert (message["position"], message["waiting_total"]) == (2, 2)
    assert message["minutes"] == 30  # 2 × 15 minutes, less the seconds already waited, rounded up
    assert placeholders(domain, "utter_queue_place") == {"position", "waiting_total", "minutes"}

    # "có ai không?" while waiting (human_handoff again) answers the same way, queueing nothing twice.
    dispatcher = await ask({"handoff_requested": True}, ActionRequestHandoff())
    assert responses(dispatcher) == ["utter_queue_place"]


async def test_nobody_on_duty_or_no_history(desk, domain) -> None:
    await queue(desk[DESK], SENDER)
    dispatcher = await ask({"handoff_requested": True})
    assert responses(dispatcher) == ["utter_queue_place_no_agent"]
    assert dispatcher.messages[0]["position"] == 1
    assert placeholders(domain, "utter_queue_place_no_agent") == {"position", "waiting_total"}

    await make_agent(desk[DESK], "lan")
    dispatcher = await ask({"handoff_requested": True})
    assert responses(dispatcher) == ["utter_queue_place_no_estimate"]


async def test_not_in_the_queue_is_offered_an_agent(desk, domain) -> None:
    dispatcher = await ask({"handoff_requested": False})
    assert responses(dispatcher) == ["utter_queue_not_waiting"]
    assert "/human_handoff" in {
        b["payload"] for b in domain["responses"]["utter_queue_not_waiting"][0]["buttons"]
    }


async def test_queued_a_moment_ago_is_never_told_it_is_not_in_the_queue(desk) -> None:
    # The bot set handoff_requested; the desk has not received the events yet.
    dispatcher = await ask({"handoff_requested": True})
    assert responses(dispatcher) == ["utter_handoff_still_waiting"]


async def test_taken_by_an_agent(desk) -> None:
    await queue(desk[DESK], SENDER)
    async with desk[DESK].engine.begin() as conn:
        await conn.execute(
            db.handoffs.update().where(db.handoffs.c.sender_id == SENDER).values(status="active")
        )
    assert responses(await ask({"handoff_requested": True})) == ["utter_queue_with_agent"]


async def test_desk_down_or_refusing_the_token(desk, monkeypatch) -> None:
    await queue(desk[DESK], SENDER)
    monkeypatch.setenv("DESK_API_TOKEN", "not-the-desks-token")
    desk_api.reset_desk_api()
    assert responses(await ask({"handoff_requested": True})) == ["utter_handoff_still_waiting"]
    monkeypatch.delenv("DESK_API_TOKEN")
    monkeypatch.setenv("DESK_URL", "http://127.0.0.1:9")
    desk_api.reset_desk_api()
    assert responses(await ask({"handoff_requested": True})) == ["utter_handoff_still_waiting"]
    assert responses(await ask({"handoff_requested": False})) == ["utter_queue_not_waiting"]
