"""Listing a request's documents with links to the original and signed PDFs.

Apart from bot/actions/documents.py (which finds the current request through the lookup) because
the lookup itself lists the documents of the request it has found.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

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
