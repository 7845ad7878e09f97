"""What Rasa's REST channel (`POST /webhooks/rest/webhook`) accepts, and from whom.

Rasa 3.6's `RestInput` trusts its caller completely. This module patches it (`install()`, idempotent;
deploy/windowed_tracker_store.py calls it, as Rasa imports that module at start-up):

- The body must be a JSON object whose `sender` and `message` are text, else 400. Rasa read
  `request.json.get("sender")`, so `null`, `[]`, `123` or `"text"` raised AttributeError and Sanic
  answered 500 (found by tests/fuzz).
- A `sender` that starts with a connector's prefix (`zalo:`, `telegram:`; connectors/common/senders.py)
  → 403: nobody may write into a Zalo or Telegram customer's conversation through REST.
- With `REST_CHANNEL_TOKEN` set, every call must carry it (`Authorization: Bearer <token>` or
  `?token=`; compared in constant time), else 401. With `APP_ENV=production` and no token the
  channel answers 403: it is then off.
- Client-supplied `metadata` is dropped and `input_channel` is always `rest`. Stock Rasa passes
  both through to the tracker, and the bot trusts `metadata.shared_contact` (common/shared_contact.py)
  as set by a connector, and the desk pushes agents' replies to the conversation's latest
  input channel.

The channel is internal all the same (nginx does not expose it, deploy/nginx.conf.j2); the desk's
web chat (agent_desk/rasa_client.py `rest_message`, which sends `REST_CHANNEL_TOKEN` when set) and
the tests call it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from connectors.common.senders import CHAT_SENDER_PREFIXES

TOKEN_ENV = "REST_CHANNEL_TOKEN"  # noqa: S105 (a variable name)
_installed = False
ORIGINAL: dict[str, Any] = {}  # Rasa's own methods, before install() (tests compare with them)


def _production(env: Mapping[str, str]) -> bool:
    return env.get("APP_ENV", "development").strip().lower() == "production"


def check_access(headers: Mapping[str, str], args: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """Raise Sanic's 403 when the channel is off (production without a token), 401 without the token."""
    from sanic.exceptions import Forbidden, Unauthorized

    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        if _production(env):
            raise Forbidden("The REST channel is disabled in production without REST_CHANNEL_TOKEN.")
        return
    auth = str(headers.get("authorization") or "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer":
        given = str(args.get("token") or "")  # Sanic's args.get: the first value
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("A valid REST channel token is required.", scheme="Bearer")


def check_body(body: Any) -> None:
    """Raise Sanic's 400 unless `body` is a JSON object whose sender and message are text, and its
    403 when the sender is a Zalo or Telegram conversation id."""
    from sanic.exceptions import Forbidden, InvalidUsage

    if not isinstance(body, dict):
        raise InvalidUsage("The body must be a JSON object with 'sender' and 'message'.")
    for key in ("sender", "message"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise InvalidUsage(f"'{key}' must be a string.")
    sender = (body.get("sender") or "").strip().casefold()
    if sender.startswith(CHAT_SENDER_PREFIXES):
        raise Forbidden("This sender id belongs to a chat channel; the REST channel may not use it.")


def install() -> None:
    global _installed
    if _installed:
        return
    from rasa.core.channels.rest import RestInput
    from sanic.request import Request

    original = RestInput._extract_sender
    ORIGINAL.update(
        _extract_sender=original,
        get_metadata=RestInput.get_metadata,
        _extract_input_channel=RestInput._extract_input_channel,
    )

    async def _extract_sender(self: RestInput, req: Request) -> str | None:
        # The first thing `receive` does with a request: refuse it here, before the bot runs.
        check_access(req.headers, req.args, os.environ)
        check_body(req.json)
        return await original(self, req)

    def get_metadata(self: RestInput, request: Request) -> dict[str, Any] | None:
        return None  # only connectors set metadata (common/shared_contact.py)

    def _extract_input_channel(self: RestInput, req: Request) -> str:
        return self.name()

    RestInput._extract_sender = _extract_sender  # type: ignore[method-assign]
    RestInput.get_metadata = get_metadata  # type: ignore[method-assign]
    RestInput._extract_input_channel = _extract_input_channel  # type: ignore[method-assign]
    _installed = True
