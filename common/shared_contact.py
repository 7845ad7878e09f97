"""The contract between the chat connectors and the bot for a phone number shared in one tap.

Telegram's "share my phone number" keyboard button and Zalo's request-user-info card both end in a
message the connector relays to Rasa as the text `SHARE_CONTACT_TEXT` with `metadata[METADATA_KEY]`:

    {"phone": "+84905123456" | None, "source": "telegram_contact" | "zalo_user_info", "own_number": bool}

`own_number` is true only when the platform guarantees that the number belongs to the sender's own
account (Telegram: the contact's `user_id` equals the sender's id; Zalo never guarantees it, the user can
edit the form). Only connectors set this metadata: stock Rasa's REST channel would pass a client's
`metadata` through, so deploy/rest_guard.py drops it (and forces `input_channel: rest`); a typed
"/share_contact" arrives without it and verifies nothing.

The bot asks for the number with a button of type `REQUEST_CONTACT_BUTTON`; channels that cannot
ask (REST, web chat) never get one.
"""

from __future__ import annotations

from typing import Literal, TypedDict

SHARE_CONTACT_TEXT = "/share_contact"
METADATA_KEY = "shared_contact"
REQUEST_CONTACT_BUTTON = "request_contact"

Source = Literal["telegram_contact", "zalo_user_info"]


class SharedContact(TypedDict):
    phone: str | None
    source: Source
    own_number: bool


def shared_contact(phone: str | None, source: Source, own_number: bool) -> dict[str, SharedContact]:
    """The metadata a connector attaches to the relayed `SHARE_CONTACT_TEXT` message."""
    return {
        METADATA_KEY: SharedContact(phone=(phone or "")[:32] or None, source=source, own_number=own_number)
    }
