"""Listing a request's documents with links to the original and signed PDFs."""

from __future__ import annotations

from typing import NamedTuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import chat_user, fmt_datetime, link_button
from bot.actions.signing_api import ApiError, Document, NotVerified, ServiceUnavailable, get_api
from bot.actions.verification import start_verification

ORIGINAL_MARK = "📄"
SIGNED_MARK = "✅"
# The title of a signing certificate's button; channels that can send files send it as a PDF.
CERTIFICATE_TITLE = "📄 Biên bản xác nhận ký số"


async def show_documents(dispatcher: CollectingDispatcher, tracker: Tracker, code: str) -> list[EventType]:
    """Utter the document list of `code` with one link button per original and signed PDF (fresh
    links, valid one hour); a chat user not verified for the request is asked to verify first."""
    try:
        docs = await get_api().documents(code, chat_user(tracker))
    except NotVerified as refusal:
        return await start_verification(dispatcher, tracker, code, "documents", refusal)
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
    buttons += certificate_buttons(docs)
    dispatcher.utter_message(
        response="utter_documents",
        code=code,
        documents="\n".join(lines),
        expires=fmt_datetime(docs[0].get("links_expire_at")),
        buttons=buttons,
    )
    return []


def certificate_buttons(docs: list[Document]) -> list[dict[str, str]]:
    """One button per signing session's certificate (documents signed together share one)."""
    urls: dict[str, str] = {}
    for doc in docs:
        url = doc.get("certificate_url")
        if url:
            urls.setdefault(str(url).split("?", 1)[0], str(url))
    if len(urls) == 1:
        return [link_button(CERTIFICATE_TITLE, url) for url in urls.values()]
    return [link_button(f"{CERTIFICATE_TITLE} {i}", url) for i, url in enumerate(urls.values(), start=1)]


def need_request(task: str) -> list[EventType]:
    """No request chosen yet: remember the task and run the lookup form first."""
    return [SlotSet("pending_task", task), FollowupAction("find_request_form")]


async def current_request(
    dispatcher: CollectingDispatcher, tracker: Tracker, task: str
) -> str | list[EventType]:
    """The code of the request `task` (documents, sign, amend) works on, or the events to return instead.

    A code typed in this message is looked up first (the lookup comes back to `task`); with no request
    known yet the lookup form runs first.
    """
    from bot.actions.lookup import reset_lookup, show_request, typed_code  # noqa: PLC0415 (import cycle)

    typed = typed_code(tracker)
    if typed:
        return reset_lookup() + await show_request(dispatcher, tracker, typed, pending=task)
    code = tracker.get_slot("request_code")
    if not code:
        return need_request(task)
    return str(code)


class RequestDocuments(NamedTuple):
    code: str
    docs: list[Document]


async def documents_of_current_request(
    dispatcher: CollectingDispatcher, tracker: Tracker, task: str
) -> RequestDocuments | list[EventType]:
    """The current request's documents (none when the service refuses), or the events to return instead.

    A service outage has been told to the customer (`utter_service_unavailable`) and ends the action.
    """
    code = await current_request(dispatcher, tracker, task)
    if isinstance(code, list):
        return code
    try:
        docs = await get_api().documents(code, chat_user(tracker))
    except NotVerified as refusal:
        return await start_verification(dispatcher, tracker, code, task, refusal)
    except ServiceUnavailable:
        dispatcher.utter_message(response="utter_service_unavailable")
        return []
    except ApiError:  # e.g. the request is gone: nothing to sign or amend
        docs = []
    return RequestDocuments(code, docs)


class ActionShowDocuments(Action):
    """`view_documents`: the documents of the current request."""

    def name(self) -> str:
        return "action_show_documents"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # "xem giấy tờ PC05TK0000123": the lookup lists the documents once it has found the request.
        code = await current_request(dispatcher, tracker, "documents")
        if isinstance(code, list):
            return code
        # Unlike signing and amendment, an unknown request is said so here (show_documents).
        return await show_documents(dispatcher, tracker, code)
