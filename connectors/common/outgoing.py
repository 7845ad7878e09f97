"""Turn a Rasa bot message (``BotUttered.message()``) into a platform-neutral reply.

Rasa responses reach an output channel as dicts with ``text``, ``buttons``/``quick_replies``,
``image``, ``attachment`` and ``custom``. Documents may come as
``custom: {"documents": [{"title": ..., "url": ...}]}`` (the format docs/channels.md asks the bot
to use), ``custom: {"document": url, "title"|"caption": ...}`` or an ``attachment`` that is a URL
or ``{"url", "title"}``. Every platform then decides how to show them.

A button of type ``REQUEST_CONTACT_BUTTON`` (common/shared_contact.py) asks for the customer's phone
number in one tap: Telegram shows a "share my contact" keyboard, Zalo its request-user-info card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from common.shared_contact import REQUEST_CONTACT_BUTTON

MAX_DOCUMENTS = 20
# A link button pointing at a PDF (the signing service's /v1/documents/{id}/file and signing
# certificate /v1/signing-sessions/{id}/certificate/file links) is a document.
DOCUMENT_URL = re.compile(
    r"/documents/[^/?#]+/file(?:[?#]|$)|/certificate/file(?:[?#]|$)|\.pdf(?:[?#]|$)", re.IGNORECASE
)


@dataclass(frozen=True)
class Button:
    title: str
    payload: str | None = None  # sent back as the user's message when tapped
    url: str | None = None  # opens a link instead
    request_contact: bool = False  # asks for the phone number (the platform's own share button)


@dataclass(frozen=True)
class Document:
    title: str
    url: str


@dataclass
class Reply:
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    image: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.text or self.buttons or self.documents or self.image)

    @property
    def files(self) -> list[Document]:
        """Explicit documents plus link buttons that point at a PDF (the bot shows document
        links as buttons); platforms that can send files send these as files."""
        seen = {d.url for d in self.documents}
        linked = []
        for b in self.buttons:
            if b.url and b.url not in seen and DOCUMENT_URL.search(b.url.split("?", 1)[0] + "?"):
                seen.add(b.url)
                linked.append(Document(b.title, b.url))
        return self.documents + linked


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def to_button(raw: Any) -> Button | None:
    if not isinstance(raw, dict):
        return None
    title = str(raw.get("title") or "").strip()
    url = raw.get("url")
    payload = raw.get("payload")
    if not title:
        return None
    if raw.get("type") == REQUEST_CONTACT_BUTTON:
        return Button(title, request_contact=True)
    if _is_url(url):
        return Button(title, url=str(url))
    if _is_url(payload):
        return Button(title, url=str(payload))
    if payload is None or str(payload).strip() == "":
        payload = title  # a button without payload sends its title, as Rasa's web widgets do
    return Button(title, payload=str(payload))


def _to_document(raw: Any, fallback_title: str = "") -> Document | None:
    if _is_url(raw):
        return Document(fallback_title or str(raw).rsplit("/", 1)[-1].split("?")[0], str(raw))
    if isinstance(raw, dict):
        url = raw.get("url") or raw.get("link") or raw.get("signed_url") or raw.get("original_url")
        if _is_url(url):
            title = str(raw.get("title") or raw.get("name") or raw.get("caption") or fallback_title)
            return Document(title.strip() or str(url), str(url))
    return None


def from_rasa(message: dict[str, Any]) -> Reply:
    """Normalise one bot message; unknown keys (``timestamp``, metadata) are ignored."""
    reply = Reply(text=str(message.get("text") or "").strip())
    raw_buttons = message.get("buttons") or message.get("quick_replies") or []
    custom = message.get("custom")
    if isinstance(custom, dict):
        if not reply.text and isinstance(custom.get("text"), str):
            reply.text = custom["text"].strip()
        if not raw_buttons and isinstance(custom.get("buttons"), list):
            raw_buttons = custom["buttons"]
        docs = custom.get("documents")
        if isinstance(docs, list):
            reply.documents.extend(d for d in (_to_document(x) for x in docs) if d)
        single = custom.get("document")
        if single is not None:
            title = str(custom.get("title") or custom.get("caption") or "")
            doc = _to_document(single, title)
            if doc:
                reply.documents.append(doc)
    if isinstance(raw_buttons, list):
        reply.buttons = [b for b in (to_button(x) for x in raw_buttons) if b]
    attachment = message.get("attachment")
    if attachment is not None:
        doc = _to_document(attachment)
        if doc:
            reply.documents.append(doc)
    if _is_url(message.get("image")):
        reply.image = str(message["image"])
    del reply.documents[MAX_DOCUMENTS:]
    return reply
