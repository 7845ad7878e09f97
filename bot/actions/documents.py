"""Listing a request's documents with links to the original and signed PDFs."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import fmt_datetime, link_button
from bot.actions.signing_api import ApiError, ServiceUnavailable, get_api

ORIGINAL_MARK = "📄"
SIGNED_MARK = "✅"


async def show_documents(dispatcher: CollectingDispatcher, code: str) -> list[EventType]:
    """Utter the document list of `code` with one link button per original and signed PDF."""
    try:
        docs = await get_api().documents(code)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    except ApiError:
        dispatcher.utter_message(response="utter_request_not_found", code=code)
        return []
    if not docs:
        dispatcher.utter_message(response="utter_no_documents", code=code)
        return []
    lines, buttons = [], []
    for i, doc in enumerate(docs, start=1):
        lines.append(f"{i}. {doc.get('title', '')} – {doc.get('status_label', '')}")
        if doc.get("original_url"):
            buttons.append(link_button(f"{ORIGINAL_MARK} {doc.get('title', '')}", doc["original_url"]))
        if doc.get("signed_url"):
            buttons.append(link_button(f"{SIGNED_MARK} {doc.get('title', '')}", str(doc["signed_url"])))
    dispatcher.utter_message(
        response="utter_documents",
        code=code,
        documents="\n".join(lines),
        expires=fmt_datetime(docs[0].get("links_expire_at")),
        buttons=buttons,
    )
    return []


def need_request(task: str) -> list[EventType]:
    """No request chosen yet: remember the task and run the lookup form first."""
    return [SlotSet("pending_task", task), FollowupAction("find_request_form")]


class ActionShowDocuments(Action):
    """`view_documents`: the documents of the current request."""

    def name(self) -> str:
        return "action_show_documents"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        from bot.actions.lookup import reset_lookup, show_request, typed_code  # noqa: PLC0415 (import cycle)

        typed = typed_code(tracker)
        if typed:  # "xem giấy tờ PC05TK0000123": look it up first, then list its documents
            return reset_lookup() + await show_request(dispatcher, tracker, typed, pending="documents")
        code = tracker.get_slot("request_code")
        if not code:
            return need_request("documents")
        return await show_documents(dispatcher, str(code))
