"""Build Zalo v3 customer-service message bodies from a platform-neutral reply."""

from __future__ import annotations

from typing import Any

from connectors.common.canned import REQUEST_INFO_SUBTITLE
from connectors.common.outgoing import Button, Reply
from connectors.common.text import split_text

TITLE_LIMIT = 100
SUBTITLE_LIMIT = 500  # request_user_info card (its title: TITLE_LIMIT)
# Zalo wants text next to buttons; a group of buttons beyond the first five gets this neutral filler.
CONTINUATION = "…"


def zalo_button(button: Button) -> dict[str, Any]:
    title = button.title[:TITLE_LIMIT]
    if button.url:
        return {"title": title, "type": "oa.open.url", "payload": {"url": button.url}}
    # oa.query.hide: the tap comes back as user_send_text whose text is the payload, and the
    # payload is not echoed in the chat (Rasa payloads like /sign_documents stay invisible).
    return {"title": title, "type": "oa.query.hide", "payload": button.payload or title}


def _with_buttons(text: str, buttons: list[Button]) -> dict[str, Any]:
    return {
        "text": text,
        "attachment": {"type": "template", "payload": {"buttons": [zalo_button(b) for b in buttons]}},
    }


def request_user_info(button: Button, image_url: str | None) -> dict[str, Any]:
    """The card that asks for the customer's name and phone; the answer is a `user_submit_info`
    event. The image is optional here (the card is sent without one when none is configured)."""
    element: dict[str, Any] = {
        "title": button.title[:TITLE_LIMIT],
        "subtitle": REQUEST_INFO_SUBTITLE[:SUBTITLE_LIMIT],
    }
    if image_url:
        element["image_url"] = image_url
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "request_user_info", "elements": [element]},
        }
    }


def build(
    reply: Reply, text_limit: int = 2000, max_buttons: int = 5, request_info_image: str | None = None
) -> list[dict[str, Any]]:
    """One or more message bodies, in sending order. A "share my phone number" button becomes a
    request_user_info card after the text (and its other buttons)."""
    out: list[dict[str, Any]] = []
    chunks = split_text(reply.text, text_limit) if reply.text else []
    buttons = [b for b in reply.buttons if not b.request_contact]
    groups = [buttons[i : i + max_buttons] for i in range(0, len(buttons), max_buttons)]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        out.append(_with_buttons(chunk, groups[0]) if last and groups else {"text": chunk})
    for j, group in enumerate(groups):
        if j == 0 and chunks:
            continue
        out.append(_with_buttons(CONTINUATION, group))
    contact = next((b for b in reply.buttons if b.request_contact), None)
    if contact is not None:  # one card: a second would ask the same question again
        out.append(request_user_info(contact, request_info_image))
    # Documents: the links in text (copyable, survive any client) plus one URL button each.
    docs = reply.documents
    for k in range(0, len(docs), max_buttons):
        part = docs[k : k + max_buttons]
        lines = "\n".join(f"{d.title}: {d.url}" for d in part)
        buttons = [Button(d.title, url=d.url) for d in part]
        parts = split_text(lines, text_limit)
        out.extend({"text": p} for p in parts[:-1])
        out.append(_with_buttons(parts[-1], buttons))
    if reply.image:
        out.append(
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "media",
                        "elements": [{"media_type": "image", "url": reply.image}],
                    },
                }
            }
        )
    return out


def uploaded_image(attachment_id: str) -> dict[str, Any]:
    """A media message of an image uploaded with upload/image (its attachment id)."""
    element = {"media_type": "image", "attachment_id": attachment_id}
    return {"attachment": {"type": "template", "payload": {"template_type": "media", "elements": [element]}}}
