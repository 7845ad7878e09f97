"""Amendment requests on a draft document: choose the document, describe the change, confirm."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import REQUEST_CODE_IN_TEXT, chat_user, choice_button, numbered, parse_choices
from bot.actions.documents import documents_of_current_request
from bot.actions.forms import CustomerFormValidation
from bot.actions.notify_offer import offer_notifications
from bot.actions.signing_api import ApiError, ServiceUnavailable, get_api
from bot.components.normalizer import fold_text

AMEND_SLOTS = ("amend_document", "amend_document_title", "amend_text", "amend_confirm", "doc_choices")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MIN_TEXT, MAX_TEXT = 5, 1000
# Slot values that are already document ids (set by us), as opposed to what the customer typed.
ID_PREFIX = "id:"


def document_id(value: object) -> int | None:
    text = str(value or "")
    return (
        int(text[len(ID_PREFIX) :])
        if text.startswith(ID_PREFIX) and text[len(ID_PREFIX) :].isdigit()
        else None
    )


def reset_amendment() -> list[EventType]:
    return [SlotSet(name, None) for name in AMEND_SLOTS]


def clean_text(text: str) -> str:
    return _CONTROL.sub("", text).strip()


# A message that describes the mistake itself ("phường ghi sai, nhà tôi ở An Mỹ chứ không phải
# Cẩm Phô"), not only asks for an amendment: it is kept as the amendment's text.
_DESCRIBES = re.compile(
    r"\b(sai|nham|khong phai|chu khong|chu ko|thieu|thua|dung ra|dung la|phai la|ghi la)\b"
)
MIN_DESCRIPTION_WORDS = 6


def described_mistake(tracker: Tracker) -> str | None:
    """The customer's own description of the mistake, from the message that asked for the amendment
    (it may lie several turns back: the lookup and the verification came in between)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent != "request_amendment":
            continue
        text = clean_text(REQUEST_CODE_IN_TEXT.sub("", str(event.get("text") or "")))
        text = " ".join(text.split())
        folded = fold_text(text)
        if len(text.split()) >= MIN_DESCRIPTION_WORDS and _DESCRIBES.search(folded):
            return text[:MAX_TEXT]
        return None
    return None


class ActionPrepareAmendment(Action):
    """`request_amendment`: offer the drafts of the current request, then run the form."""

    def name(self) -> str:
        return "action_prepare_amendment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        found = await documents_of_current_request(dispatcher, tracker, "amend")
        if isinstance(found, list):
            return found
        code, docs = found
        drafts = [d for d in docs if d.get("status") == "awaiting_signature"]
        if not drafts:
            dispatcher.utter_message(response="utter_no_amendable", code=code)
            return reset_amendment()
        choices = [{"id": d["id"], "title": d.get("title", "")} for d in drafts]
        events: list[EventType] = reset_amendment() + [SlotSet("doc_choices", choices)]
        description = described_mistake(tracker)
        if description:
            events.append(SlotSet("amend_text", description))
        if len(choices) == 1:
            events += [
                SlotSet("amend_document", f"{ID_PREFIX}{choices[0]['id']}"),
                SlotSet("amend_document_title", choices[0]["title"]),
            ]
        return events + [FollowupAction("amendment_form")]


class ActionAskAmendDocument(Action):
    """Asks which draft to amend, one button per draft."""

    def name(self) -> str:
        return "action_ask_amend_document"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        choices = tracker.get_slot("doc_choices") or []
        titles = [c["title"] for c in choices]
        buttons = [choice_button(t, str(i)) for i, t in enumerate(titles, start=1)]
        dispatcher.utter_message(
            response="utter_choose_amend_document", documents=numbered(titles), buttons=buttons
        )
        return []


class ValidateAmendmentForm(CustomerFormValidation):
    def name(self) -> str:
        return "validate_amendment_form"

    async def validate_amend_document(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        choices = tracker.get_slot("doc_choices") or []
        known = document_id(value)
        if known is not None and any(int(c["id"]) == known for c in choices):
            return {"amend_document": value}  # pre-selected (only one draft)
        picked = parse_choices(str(value or ""), [c["title"] for c in choices], allow_many=False)
        if not picked:
            dispatcher.utter_message(response="utter_choice_invalid")
            return {"amend_document": None}
        chosen = choices[picked[0]]
        return {"amend_document": f"{ID_PREFIX}{chosen['id']}", "amend_document_title": chosen["title"]}

    async def validate_amend_text(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = clean_text(str(value or ""))
        if len(text) < MIN_TEXT:
            dispatcher.utter_message(response="utter_amend_text_too_short")
            return {"amend_text": None}
        if len(text) > MAX_TEXT:
            dispatcher.utter_message(response="utter_amend_text_too_long")
            return {"amend_text": None}
        return {"amend_text": text}

    async def validate_amend_confirm(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return {"amend_confirm": True if value else None}


class ActionSubmitAmendment(Action):
    """Sends the confirmed amendment and gives the customer its reference number."""

    def name(self) -> str:
        return "action_submit_amendment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        code = tracker.get_slot("request_code")
        doc_id = document_id(tracker.get_slot("amend_document"))
        text = tracker.get_slot("amend_text")
        if not (code and doc_id is not None and text and tracker.get_slot("amend_confirm")):
            return reset_amendment()
        try:
            result = await get_api().create_amendment(str(code), int(doc_id), str(text), chat_user(tracker))
        except ServiceUnavailable:
            dispatcher.utter_message(response="utter_service_unavailable")
            return reset_amendment()
        except ApiError as err:
            dispatcher.utter_message(response="utter_service_error", reason=err.message or err.code)
            return reset_amendment()
        dispatcher.utter_message(response="utter_amendment_sent", reference=result.get("reference", ""))
        return reset_amendment() + offer_notifications(dispatcher, tracker)
