"""Cancel, fallback and handoff: the actions other parts (agent desk) hook into."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.amendment import reset_amendment
from bot.actions.common import normalize_request_code
from bot.actions.lookup import choose_candidate, reset_lookup, show_request, typed_candidate
from bot.actions.queue_wait import tell_queue_place
from bot.actions.signing import reset_signing
from bot.actions.verification import reset_verification


class ActionCancelTask(Action):
    """Forgets whatever task was under way (the found request is kept) and says so."""

    def name(self) -> str:
        return "action_cancel_task"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        forget = (
            reset_lookup()
            + reset_amendment()
            + reset_signing()
            + reset_verification()
            + [SlotSet("pending_task", None), SlotSet("verify_task", None)]
        )
        if tracker.get_slot("handoff_requested"):
            # "thôi" while queued for a person withdraws from the queue (the desk marks it cancelled).
            dispatcher.utter_message(response="utter_handoff_withdrawn")
            return forget + [SlotSet("handoff_requested", False)]
        dispatcher.utter_message(response="utter_cancelled")
        return forget


class ActionGoodbye(Action):
    """Goodbye. While queued for a person the customer leaves the queue too ("thôi, chào em"): no
    agent should take an empty chat (the desk marks the wait cancelled)."""

    def name(self) -> str:
        return "action_goodbye"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot("handoff_requested"):
            dispatcher.utter_message(response="utter_handoff_withdrawn_goodbye")
            return [SlotSet("handoff_requested", False)]
        dispatcher.utter_message(response="utter_goodbye")
        return []


class ActionRequestHandoff(Action):
    """Contract with the agent desk: flags the conversation and tells the customer it is queued."""

    def name(self) -> str:
        return "action_request_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot("handoff_requested"):
            # Asked again while waiting ("có ai không?"): their place is kept, say so (with the place
            # in the queue when the desk tells it) instead of queueing them a second time.
            await tell_queue_place(dispatcher, tracker)
            return [SlotSet("handoff_offered", False)]
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


# A satisfaction survey answer (`/csat{"csat_score":"5"}`, sent by the agent desk after a
# hand-back): it has no rule, so it lands in the core fallback, but the desk records it and
# replies itself; the bot must not answer "I did not understand".
CSAT_INTENT = "csat"


class ActionNluFallback(Action):
    """Low NLU confidence: ask to rephrase; the second time in a row, offer a human agent."""

    def name(self) -> str:
        return "action_nlu_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if ((tracker.latest_message or {}).get("intent") or {}).get("name") == CSAT_INTENT:
            return []  # the agent desk answers survey buttons
        # A well-formed request code says what the customer wants, whatever the NLU confidence.
        code = normalize_request_code(tracker.get_slot("lookup_code"))
        if code:
            return (
                reset_lookup()
                + [SlotSet("handoff_offered", False)]
                + await show_request(dispatcher, tracker, code)
            )
        # A choice from the list just shown ("cái đầu tiên") is an answer, whatever the NLU says.
        ref = typed_candidate(tracker)
        if ref:
            return [SlotSet("handoff_offered", False)] + await choose_candidate(dispatcher, tracker, ref)
        if previous_user_intent(tracker) == "nlu_fallback":
            dispatcher.utter_message(response="utter_offer_handoff")
            return [SlotSet("handoff_offered", True)]
        buttons = intent_choices(tracker.latest_message, domain)
        if buttons:
            dispatcher.utter_message(response="utter_ask_which_intent", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_please_rephrase")
        return [SlotSet("handoff_offered", False)]


# How many of the model's best guesses the customer is offered when it hesitates.
MAX_GUESSES = 2
# Guesses below this confidence are noise, not a hesitation between two meanings.
MIN_GUESS_CONFIDENCE = 0.1
LABEL_PREFIX = "utter_intent_label_"


def _response_text(domain: DomainDict, name: str) -> str | None:
    variants = (domain.get("responses") or {}).get(name) or []
    return str(variants[0].get("text") or "") or None if variants else None


def intent_choices(message: dict[str, Any] | None, domain: DomainDict) -> list[dict[str, str]]:
    """Two-stage fallback: buttons for the best guesses the bot can act on, then "none of these".

    Only intents with a `utter_intent_label_<intent>` response are offered (yes/no or a greeting
    is no answer to "did you mean"); the payload starts that intent as if the customer had said it.
    """
    ranking = (message or {}).get("intent_ranking") or []
    buttons = []
    for guess in ranking:
        name = str(guess.get("name") or "")
        if float(guess.get("confidence") or 0.0) < MIN_GUESS_CONFIDENCE or name == "nlu_fallback":
            continue
        label = _response_text(domain, LABEL_PREFIX + name)
        if label:
            buttons.append({"title": label, "payload": "/" + name})
        if len(buttons) == MAX_GUESSES:
            break
    if not buttons:
        return []
    other = _response_text(domain, "utter_ask_which_intent_other") or ""
    return buttons + [{"title": other, "payload": "/help"}]
