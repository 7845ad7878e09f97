"""The one-time offer of notices after a verified task (its own module: verification, signing and
amendments use it, and the notifications action uses verification)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

OFFERED_SLOT = "notify_offered"  # request codes this chat was offered notices for
MAX_OFFERED = 20


def offer_notifications(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """Once per request and chat, after the customer was verified and their task is done."""
    code = tracker.get_slot("request_code")
    offered: list[Any] = list(tracker.get_slot(OFFERED_SLOT) or [])
    if not code or code in offered:
        return []
    dispatcher.utter_message(response="utter_offer_notifications")
    return [SlotSet(OFFERED_SLOT, (offered + [code])[-MAX_OFFERED:])]
