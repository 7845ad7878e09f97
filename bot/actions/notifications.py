"""Notices of progress: offered once after verification, started with "nhận thông báo", stopped
with "dừng thông báo" (or the button under every notice). The notifier sends them (issue 16)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import chat_channel, chat_user, mask_code, normalize_request_code
from bot.actions.notify_offer import MAX_OFFERED, OFFERED_SLOT
from bot.actions.signing_api import ApiError, NotVerified, ServiceUnavailable, TooManyLookups, get_api
from bot.actions.verification import start_verification

NOTIFY_TASK = "notify"
SMS_ONLY_CHANNELS = ("rest", "web")


class ActionNotifications(Action):
    """Turn this chat's notices for the current request on or off (on needs a verified chat)."""

    def name(self) -> str:
        return "action_notifications"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # A notice's "Dừng thông báo" names its request (the chat may have moved on to another one).
        named = normalize_request_code(tracker.get_slot("lookup_code"))
        code = named or tracker.get_slot("request_code")
        if not code:
            dispatcher.utter_message(response="utter_notifications_need_request")
            return []
        switch: list[EventType] = [SlotSet("lookup_code", None)] if named else []
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        on = intent != "notifications_off"  # after verifying for it, the latest message is the code
        offered: list[Any] = list(tracker.get_slot(OFFERED_SLOT) or [])
        remembered = switch + (
            [] if code in offered else [SlotSet(OFFERED_SLOT, (offered + [code])[-MAX_OFFERED:])]
        )
        try:
            changed = await get_api().set_notifications(str(code), chat_user(tracker), on, tracker.sender_id)
        except TooManyLookups:
            dispatcher.utter_message(response="utter_too_many_code_lookups")
            return []
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return []
        except NotVerified as err:
            # Verify for that request, then subscribe to it.
            current = [SlotSet("request_code", code)] if code != tracker.get_slot("request_code") else []
            return (
                remembered
                + current
                + await start_verification(dispatcher, tracker, str(code), NOTIFY_TASK, err)
            )
        except ApiError as err:
            dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
            return []
        if on and changed:
            # A web chat cannot be written to first: its notices go by SMS, and the customer is told so.
            sms = chat_channel(tracker) in SMS_ONLY_CHANNELS
            said = "utter_notifications_on_sms" if sms else "utter_notifications_on"
        elif on:
            said = "utter_notifications_already_on"
        else:
            said = "utter_notifications_off" if changed else "utter_notifications_declined"
        # Stopping needs no verification: a code the customer did not type (the current request,
        # perhaps found by name) is shown masked; turning on needed one.
        shown = code if on or named else mask_code(str(code))
        dispatcher.utter_message(response=said, request_code=shown)
        return remembered
