"""What Rasa's REST channel (`POST /webhooks/rest/webhook`) accepts, and from whom.

Rasa 3.6's `RestInput` trusts its caller completely. `GuardedRestInput`, named in credentials.yml
instead of Rasa's `rest:`, is the same channel (name "rest", same URL, same answers) except:

- The body must be a JSON object whose `sender` and `message` are text, else 400. Rasa read
  `request.json.get("sender")`, so `null`, `[]`, `123` or `"text"` raised AttributeError and Sanic
  answered 500 (found by tests/fuzz).
- A `sender` that starts with a connector's prefix (`zalo:`, `telegram:`; connectors/common/senders.py)
  → 403: nobody may write into a Zalo or Telegram customer's conversation through REST.
- With `REST_CHANNEL_TOKEN` set, every call must carry it (`Authorization: Bearer <token>` or
  `?token=`; compared in constant time), else 401. With `APP_ENV=production` and no token Rasa does
  not start: the channel would be open to anyone on the network. The token is read once, at start-up.
- Client-supplied `metadata` is dropped and `input_channel` is always `rest`. Stock Rasa passes
  both through to the tracker, and the bot trusts `metadata.shared_contact` (common/shared_contact.py)
  as set by a connector, and the desk pushes agents' replies to the conversation's latest
  input channel.

The channel is internal all the same (nginx does not expose it, deploy/nginx.conf.j2); the desk's
web chat (agent_desk/rasa_client.py `rest_message`, which sends `REST_CHANNEL_TOKEN` when set) and
the tests call it. It overrides methods that Rasa's `receive` handler calls: `PINS` are the Rasa
functions it relies on (checked at start-up by deploy/rasa_main.py and by tests/deploy).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from rasa.core.channels.rest import RestInput
from rasa.shared.exceptions import RasaException
from sanic.request import Request

from common import request_id
from common.production import AppEnvError, is_production
from connectors.common.senders import CHAT_SENDER_PREFIXES
from deploy.source_pins import SourcePin

TOKEN_ENV = "REST_CHANNEL_TOKEN"  # noqa: S105 (a variable name)

PINS = (
    SourcePin(
        "rasa.core.channels.rest:RestInput.blueprint",
        "886a9338e4c2505a0d2e70242c27887311d1529a18037dbd6d1dbfe77f699d0f",
    ),
    SourcePin(
        "rasa.core.channels.rest:RestInput._extract_sender",
        "1a9567a3062f0ab8b5dd5c670bd21dbd5d67b7bf260345295c562f6aabbd7177",
    ),
    SourcePin(
        "rasa.core.channels.rest:RestInput.get_metadata",
        "26d23d28acfa89db9d1afcd6b7511ecc7b1c676e560aa7585bc9fbadc4ddd1cd",
    ),
    SourcePin(
        "rasa.core.channels.rest:RestInput._extract_input_channel",
        "ca08e7f6dc2980a5013d4cf1aa8fb80e619e9cf1903b0accdb4e20e46f76f06c",
    ),
)


class RestChannelConfigError(RasaException):
    """The channel cannot start as configured (Rasa prints the message and exits)."""


def channel_token(env: Mapping[str, str], token_env: str = TOKEN_ENV) -> str | None:
    """The token every call must carry; None when calls need none (not production, no token set).

    Raises RestChannelConfigError in production without a token, AppEnvError for an unknown APP_ENV.
    """
    production = is_production(env)  # first: an unknown APP_ENV is refused with or without a token
    token = env.get(token_env, "").strip()
    if token:
        return token
    if production:
        raise RestChannelConfigError(
            f"APP_ENV=production needs {token_env}: without it Rasa's REST channel would accept anyone's "
            f"messages. Set {token_env} for Rasa and the agent desk (docs/deploy.md)."
        )
    return None


def check_access(headers: Mapping[str, str], args: Mapping[str, Any], token: str | None) -> None:
    """Raise Sanic's 401 unless the call carries `token` (no token: every call is let through)."""
    from sanic.exceptions import Unauthorized

    if token is None:
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


class GuardedRestInput(RestInput):
    """Rasa's REST channel with the checks above; credentials.yml may name the token's variable:

    deploy.rest_guard.GuardedRestInput:
      token_env: REST_CHANNEL_TOKEN
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> GuardedRestInput:
        token_env = str((credentials or {}).get("token_env") or TOKEN_ENV)
        try:
            return cls(channel_token(os.environ, token_env))
        except AppEnvError as e:  # Rasa shows a RasaException's message and exits, no traceback
            raise RestChannelConfigError(str(e)) from e

    async def _extract_sender(self, req: Request) -> str | None:
        # The first thing `receive` does with a request: refuse it here, before the bot runs.
        check_access(req.headers, req.args, self.token)
        check_body(req.json)
        return await super()._extract_sender(req)

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        # The client's metadata is dropped (only connectors set it: common/shared_contact.py); the one
        # key set here is the request id, so REST turns are followed across processes like the others.
        # The REST channel is internal (the desk, tests): a safe X-Request-Id of the caller is kept.
        return {request_id.METADATA_KEY: request_id.accept(request.headers.get(request_id.HEADER))}

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()
