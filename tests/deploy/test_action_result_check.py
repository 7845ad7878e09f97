"""The custom action result check (deploy/rasa_speedups.py, speed-up 2) gives Rasa's verdict.

Valid results take a shorter road (each event against the one `oneOf` branch its name selects);
these tests compare it with Rasa's own check on every event type Rasa can serialise and on
thousands of mutations of them: a result the short road accepts is one Rasa accepts, and a result
Rasa refuses raises the same error with the patch.
"""

from __future__ import annotations

import copy
import itertools
from datetime import datetime
from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.core import events as ev

from deploy import rasa_patches, rasa_speedups
from deploy.source_pins import original

SUFFIX = ". Failed to validate Action server response"
BAD_VALUES: list[Any] = [None, 7, 1.5, "x", True, [], {}, [{}], {"a": 1}]


@pytest.fixture(scope="module")
def checks() -> tuple[Any, Any]:
    [patch] = [p for p in rasa_speedups.PATCHES if p.name == "rasa_speedups.prebuild_action_validator"]
    assert rasa_patches.install([patch]) == []
    patched = RemoteAction._validate_action_result
    return patched, original(patched)


def verdict(check: Any, result: Any) -> str | None:
    """None when the check accepts `result`, else the error's message and path."""
    try:
        check(RemoteAction("action_x", None), result)
    except ValidationError as e:
        assert e.message.endswith(f"{DOCS_BASE_URL}/custom-actions")  # Rasa's hint, added by both
        return f"{e.message.split(SUFFIX)[0]} @ {list(e.absolute_path)}"
    return None


def every_event() -> list[dict[str, Any]]:
    parse_data = {
        "text": "ký hồ sơ PC05TK0000123",
        "intent": {"name": "sign_documents", "confidence": 0.93},
        "intent_ranking": [{"name": "sign_documents", "confidence": 0.93}],
        "entities": [{"entity": "request_code", "value": "PC05TK0000123", "start": 9, "end": 22}],
        "response_selector": {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"responses": [{"text": "a"}], "confidence": 0.5}, "ranking": []},
        },
    }
    events = [
        ev.UserUttered("ký hồ sơ", parse_data=parse_data, input_channel="telegram", message_id="m1"),
        ev.ActionExecuted("action_prepare_signing", policy="RulePolicy", confidence=1.0),
        ev.SlotSet("sign_consent", True),
        ev.SlotSet("lookup_code", None),
        ev.EntitiesAdded([{"entity": "request_code", "value": "PC05TK0000123"}]),
        ev.BotUttered("Dạ", {"buttons": [{"title": "Có", "payload": "/affirm"}]}),
        ev.ActiveLoop("signing_form"),
        ev.ActiveLoop(None),
        ev.LoopInterrupted(True),
        ev.ActionExecutionRejected("action_x"),
        ev.FollowupAction("action_listen"),
        ev.AllSlotsReset(),
        ev.Restarted(),
        ev.ConversationPaused(),
        ev.ConversationResumed(),
        ev.ActionReverted(),
        ev.UserUtteranceReverted(),
        ev.SessionStarted(),
        ev.StoryExported(),
        ev.AgentUttered("xin chào"),
        ev.UserUtteranceReverted(),
        ev.ReminderScheduled("EXTERNAL_x", trigger_date_time=datetime(2026, 12, 6)),
        ev.ReminderCancelled(name="r1"),
    ]
    out = [e.as_dict() for e in events]
    out.append({"event": "user_featurization", "use_text_for_featurization": False})
    out.append({"event": "form_validation", "validate": True})
    out.append({"event": "form", "name": "signing_form"})
    return out


def valid_results() -> list[dict[str, Any]]:
    events = every_event()
    return [
        {},
        {"events": [], "responses": []},
        {"events": events, "responses": [{"text": "Dạ", "buttons": []}, {"response": "utter_x"}]},
        *({"events": [e]} for e in events),
    ]


def mutations(result: dict[str, Any]) -> list[Any]:
    """Every field of every event (and of its parse data) replaced by each bad value, removed, and
    the result's own fields broken."""
    out: list[Any] = [
        None,
        [],
        "x",
        {"events": None},
        {"events": "x"},
        {"events": [None]},
        {"responses": [1]},
    ]
    for i, event in enumerate(result.get("events") or []):
        targets = [(event, k) for k in event] + [
            (event["parse_data"], k) for k in event.get("parse_data") or {}
        ]
        for (owner, key), bad in itertools.product(targets, BAD_VALUES):
            broken = copy.deepcopy(result)
            holder = broken["events"][i] if owner is event else broken["events"][i]["parse_data"]
            holder[key] = bad
            out.append(broken)
        for owner, key in targets:
            broken = copy.deepcopy(result)
            holder = broken["events"][i] if owner is event else broken["events"][i]["parse_data"]
            del holder[key]
            out.append(broken)
    return out


def test_every_event_rasa_writes_passes_the_short_road(checks: tuple[Any, Any]) -> None:
    patched, stock = checks
    for result in valid_results():
        assert verdict(stock, result) is None, result
        assert patched.surely_valid(result), result  # valid results never take the long road


def full_check(result: Any) -> str | None:
    """Rasa's check without re-checking the (constant) schema first, which costs ~20 ms a call:
    the stock function itself is compared on every 10th case."""
    from jsonschema import exceptions, validators

    spec = RemoteAction.action_response_format_spec()
    error = exceptions.best_match(validators.validator_for(spec)(spec).iter_errors(result))
    return None if error is None else f"{error.message} @ {list(error.absolute_path)}"


def test_the_patch_gives_rasas_verdict_on_thousands_of_broken_results(checks: tuple[Any, Any]) -> None:
    patched, stock = checks
    broken = [m for r in valid_results()[3:] for m in mutations(r)]  # one event per result
    refused = 0
    for n, result in enumerate(broken):
        expected = full_check(result)
        if n % 10 == 0:
            assert verdict(stock, result) == expected, result
        assert verdict(patched, result) == expected, result
        if expected is not None:
            refused += 1
            assert not patched.surely_valid(result), result
    assert len(broken) > 1000 and refused > 300, (len(broken), refused)
