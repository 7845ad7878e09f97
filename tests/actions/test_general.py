"""Fallback, handoff and cancel actions (no service needed), and start-up configuration checks."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.general import ActionCancelTask, ActionNluFallback, ActionRequestHandoff
from bot.actions.settings import ConfigError, Settings
from tests.actions.conftest import make_tracker, responses, slot_events


def fallback_tracker(previous_intent: str) -> Tracker:
    tracker = make_tracker(intent="nlu_fallback", text="asdf")
    earlier = {"event": "user", "text": "x", "parse_data": {"intent": {"name": previous_intent}}}
    tracker.events.insert(0, earlier)
    tracker.events.insert(1, {"event": "bot", "text": "..."})
    return tracker


async def test_first_fallback_asks_to_rephrase() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionNluFallback().run(dispatcher, fallback_tracker("greet"), {})
    assert responses(dispatcher) == ["utter_please_rephrase"]
    assert slot_events(events) == {"handoff_offered": False}


async def test_second_fallback_in_a_row_offers_a_human() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionNluFallback().run(dispatcher, fallback_tracker("nlu_fallback"), {})
    assert responses(dispatcher) == ["utter_offer_handoff"]
    assert slot_events(events) == {"handoff_offered": True}


async def test_handoff_contract() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionRequestHandoff().run(dispatcher, make_tracker(), {})
    assert responses(dispatcher) == ["utter_handoff_queued"]
    assert slot_events(events)["handoff_requested"] is True


async def test_cancel_keeps_the_found_request() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCancelTask().run(dispatcher, make_tracker({"request_code": "PC05TK0000123"}), {})
    assert responses(dispatcher) == ["utter_cancelled"]
    slots = slot_events(events)
    assert "request_code" not in slots
    assert slots["signing_session_id"] is None and slots["amend_text"] is None


async def test_stop_while_queued_for_a_person_withdraws_from_the_queue() -> None:
    dispatcher = CollectingDispatcher()
    events = await ActionCancelTask().run(dispatcher, make_tracker({"handoff_requested": True}), {})
    assert responses(dispatcher) == ["utter_handoff_withdrawn"]
    assert slot_events(events)["handoff_requested"] is False  # the desk marks the wait cancelled
    again = CollectingDispatcher()
    events = await ActionCancelTask().run(again, make_tracker({"handoff_requested": False}), {})
    assert responses(again) == ["utter_cancelled"] and "handoff_requested" not in slot_events(events)


def test_settings_defaults_and_production_refusal() -> None:
    s = Settings.from_env({})
    assert s.signing_url == "http://127.0.0.1:8800" and s.timeout_s == 5
    with pytest.raises(ConfigError, match="SIGNING_SERVICE_TOKEN"):
        Settings.from_env({"APP_ENV": "production", "SIGNING_SERVICE_URL": "https://sign.internal"})
    with pytest.raises(ConfigError, match="SIGNING_SERVICE_URL"):
        Settings.from_env({"APP_ENV": "production", "SIGNING_SERVICE_TOKEN": "s3cret-token-value"})
    with pytest.raises(ConfigError, match="http"):
        Settings.from_env({"SIGNING_SERVICE_URL": "ftp://x"})
    with pytest.raises(ConfigError, match="TIMEOUT"):
        Settings.from_env({"SIGNING_SERVICE_TIMEOUT": "abc"})
    ok = Settings.from_env(
        {
            "APP_ENV": "production",
            "SIGNING_SERVICE_URL": "https://sign.internal",
            "SIGNING_SERVICE_TOKEN": "s3cret",
            "DESK_API_TOKEN": "desk-s3cret",
            "DESK_URL": "https://desk.internal/",
        }
    )
    assert ok.signing_token == "s3cret"
    assert (ok.desk_url, ok.desk_token) == ("https://desk.internal", "desk-s3cret")
    with pytest.raises(ConfigError, match="DESK_API_TOKEN"):
        Settings.from_env(
            {"APP_ENV": "production", "SIGNING_SERVICE_URL": "https://s", "SIGNING_SERVICE_TOKEN": "s3cret"}
        )
    with pytest.raises(ConfigError, match="DESK_URL"):
        Settings.from_env({"DESK_URL": "desk:8900"})


async def test_goodbye_while_queued_for_a_person_leaves_the_queue() -> None:
    from bot.actions.general import ActionGoodbye

    dispatcher = CollectingDispatcher()
    events = await ActionGoodbye().run(
        dispatcher, make_tracker({"handoff_requested": True}, intent="goodbye"), {}
    )
    assert responses(dispatcher) == ["utter_handoff_withdrawn_goodbye"]
    assert slot_events(events) == {"handoff_requested": False}  # the desk marks the wait cancelled
    dispatcher = CollectingDispatcher()
    events = await ActionGoodbye().run(
        dispatcher, make_tracker({"handoff_requested": False}, intent="goodbye"), {}
    )
    assert responses(dispatcher) == ["utter_goodbye"] and events == []
