"""Cancel, fallback and handoff: the actions other parts (agent desk) hook into."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.amendment import reset_amendment
from bot.actions.common import normalize_request_code
from bot.actions.lookup import reset_lookup, show_request
from bot.actions.signing import reset_signing
from bot.actions.verification import reset_verification


class ActionCancelTask(Action):
    """Forgets whatever task was under way (the found request is kept) and says so."""

    def name(self) -> str:
        return "action_cancel_task"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_cancelled")
        return (
            reset_lookup()
            + reset_amendment()
            + reset_signing()
            + reset_verification()
            + [SlotSet("pending_task", None), SlotSet("verify_task", None)]
        )


class ActionRequestHandoff(Action):
    """Contract with the agent desk: flags the conversation and tells the customer it is queued."""

    def name(self) -> str:
        return "action_request_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_handoff_queued")
        return [SlotSet("handoff_requested", True), SlotSet("handoff_offered", False)]


def previous_user_intent(tracker: Tracker) -> str | None:
    """Intent of the user message before the latest one."""
    seen = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            seen += 1
            if seen == 2:
                return (event.get("parse_data") or {}).get("intent", {}).get("name")
    return None


class ActionNluFallback(Action):
    """Low NLU confidence: ask to rephrase; the second time in a row, offer a human agent."""

    def name(self) -> str:
        return "action_nlu_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # A well-formed request code says what the customer wants, whatever the NLU confidence.
        code = normalize_request_code(tracker.get_slot("lookup_code"))
        if code:
            return (
                reset_lookup()
                + [SlotSet("handoff_offered", False)]
                + await show_request(dispatcher, tracker, code)
            )
        if previous_user_intent(tracker) == "nlu_fallback":
            dispatcher.utter_message(response="utter_offer_handoff")
            return [SlotSet("handoff_offered", True)]
        dispatcher.utter_message(response="utter_please_rephrase")
        return [SlotSet("handoff_offered", False)]
