"""The request a task (documents, signing, amendment) works on, and `action_show_documents`."""

from __future__ import annotations

from typing import NamedTuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions.common import chat_user
from bot.actions.document_list import show_documents
from bot.actions.lookup import reset_lookup, show_request, typed_code
from bot.actions.signing_api import ApiError, Document, NotVerified, ServiceUnavailable, get_api
from bot.actions.verification import start_verification


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
