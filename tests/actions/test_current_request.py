"""The opening shared by the document, signing and amendment actions (documents_of_current_request)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import signing_api
from bot.actions.amendment import ActionPrepareAmendment
from bot.actions.documents import ActionShowDocuments
from bot.actions.signing import ActionPrepareSigning
from devstack.processes import free_port
from tests.actions.conftest import make_tracker, responses, slot_events

# These tests play the real customer, verified for the demo requests (tests/actions/conftest.py).
pytestmark = pytest.mark.usefixtures("verified_sender")

# Each action with the task it hands to the lookup and the action the lookup comes back to.
ACTIONS = [
    (ActionPrepareSigning, "sign", "action_prepare_signing"),
    (ActionPrepareAmendment, "amend", "action_prepare_amendment"),
]


@pytest.fixture
def service_down() -> Iterator[None]:
    """Point the client at a port nobody listens on (the autouse fixture restores the real one)."""
    os.environ["SIGNING_SERVICE_URL"] = f"http://127.0.0.1:{free_port()}"
    signing_api.reset_api()
    yield


@pytest.mark.parametrize(("action", "task", "comes_back_to"), ACTIONS)
async def test_typed_code_is_looked_up_first_then_the_action_runs_again(
    action: type[Action], task: str, comes_back_to: str
) -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"lookup_code": "PC05TK0000123", "request_code": "PC05TK0000456"})
    events = await action().run(dispatcher, tracker, {})
    slots = slot_events(events)
    assert slots["request_code"] == "PC05TK0000123"
    assert slots["lookup_code"] is None
    assert events[-1]["name"] == comes_back_to
    assert responses(dispatcher)[0] == "utter_request_status"


@pytest.mark.parametrize(("action", "task", "comes_back_to"), ACTIONS)
async def test_without_a_request_the_lookup_form_runs_with_the_task(
    action: type[Action], task: str, comes_back_to: str
) -> None:
    dispatcher = CollectingDispatcher()
    events = await action().run(dispatcher, make_tracker({}), {})
    assert slot_events(events) == {"pending_task": task}
    assert events[-1]["name"] == "find_request_form"
    assert dispatcher.messages == []


@pytest.mark.parametrize(("action", "task", "comes_back_to"), ACTIONS)
@pytest.mark.usefixtures("service_down")
async def test_service_outage_is_told_and_ends_the_action(
    action: type[Action], task: str, comes_back_to: str
) -> None:
    dispatcher = CollectingDispatcher()
    events = await action().run(dispatcher, make_tracker({"request_code": "PC05TK0000123"}), {})
    assert events == []
    assert responses(dispatcher) == ["utter_service_unavailable"]


async def test_unknown_request_means_nothing_to_sign_or_amend() -> None:
    dispatcher = CollectingDispatcher()
    await ActionPrepareSigning().run(dispatcher, make_tracker({"request_code": "PC05TK9999999"}), {})
    assert responses(dispatcher) == ["utter_no_documents"]
    dispatcher = CollectingDispatcher()
    await ActionPrepareAmendment().run(dispatcher, make_tracker({"request_code": "PC05TK9999999"}), {})
    assert responses(dispatcher) == ["utter_no_amendable"]


async def test_documents_of_an_unknown_request_say_it_is_not_found() -> None:
    dispatcher = CollectingDispatcher()
    await ActionShowDocuments().run(dispatcher, make_tracker({"request_code": "PC05TK9999999"}), {})
    assert responses(dispatcher) == ["utter_request_not_found"]


async def test_documents_with_a_typed_code_are_listed_after_the_lookup() -> None:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"lookup_code": "PC05TK0000123"})
    events = await ActionShowDocuments().run(dispatcher, tracker, {})
    assert slot_events(events)["request_code"] == "PC05TK0000123"
    assert responses(dispatcher)[0] == "utter_request_status"
    assert responses(dispatcher)[-1] == "utter_documents"
