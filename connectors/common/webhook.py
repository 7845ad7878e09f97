"""What the Zalo and Telegram input channels share: the webhook blueprint and set-up from the environment.

A subclass names its channel, reads its settings from the environment and handles a webhook POST;
this base serves `GET /` (health), `POST /webhook`, and closes the platform client when Rasa stops.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Awaitable, Callable, ClassVar, Generic, TypeVar

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from connectors.common import bot_failures, canned
from connectors.common.bot_failures import BotTurns
from connectors.common.dedupe import recent_keys
from connectors.common.tasks import SerialPerKey

SettingsT = TypeVar("SettingsT")
ChannelT = TypeVar("ChannelT", bound="WebhookInput[Any]")
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
DEDUPE_SIZE = 100_000


class WebhookInput(InputChannel, Generic[SettingsT]):
    """An input channel whose settings come from the environment (None: the channel is disabled)."""

    channel: ClassVar[str]
    dedupe_ttl: ClassVar[int]  # how long the platform may redeliver an event, in seconds
    required_env: ClassVar[str]  # named in the log line when the channel is disabled

    def __init__(self, settings: SettingsT | None) -> None:
        self.settings = settings
        self.recent = recent_keys(self.channel, self.dedupe_ttl, DEDUPE_SIZE)
        self.runner = SerialPerKey(self.channel)
        self.turns = BotTurns(self.channel)  # a failed bot turn goes to the agent desk

    @classmethod
    def name(cls) -> str:
        return cls.channel

    @classmethod
    @abstractmethod
    def settings_from_env(cls) -> SettingsT | None:
        """The channel's settings, None when its variables are unset."""

    @classmethod
    def from_credentials(cls: type[ChannelT], credentials: dict[str, Any] | None) -> ChannelT:
        # Configuration comes from the environment (credentials.yml only registers the class).
        bot_failures.install()  # Rasa loads the channels at start-up: failed actions go to people too
        settings = cls.settings_from_env()
        if settings is None:
            # Logged under the subclass's module, as each channel did before sharing this.
            logging.getLogger(cls.__module__).info(
                "%s channel disabled: %s unset", cls.channel.capitalize(), cls.required_env
            )
        return cls(settings)

    @abstractmethod
    async def handle_webhook(self, request: Request, on_new_message: OnNewMessage) -> HTTPResponse:
        """Answer one webhook POST (acknowledge at once, run the bot in the background)."""

    @abstractmethod
    async def close_client(self) -> None:
        """Close the platform API client, if any."""

    def accept(
        self,
        request: Request,
        sender: str,
        delivery: str,
        what: str,
        process: Callable[[Any], Awaitable[None]],
    ) -> HTTPResponse:
        """Acknowledge at once and run `process(app)` in the background, once per `delivery` key.

        Platforms redeliver what was not acknowledged quickly; a redelivery is answered but dropped.
        """
        if not self.recent.check_and_add(delivery):
            logging.getLogger(type(self).__module__).info("duplicate %s dropped", what)
            return response.json({"status": "duplicate"})
        app = request.app
        self.runner.submit(sender, lambda: process(app))
        return response.json({"status": "accepted"})

    async def answered_unsupported(self, app: Any, output: OutputChannel, sender: str) -> bool:
        """Answer content the bot cannot read with the domain's canned text (False: the domain has none)."""
        reply = canned.domain_response_text(app, canned.UNSUPPORTED_RESPONSE, self.channel)
        if reply:
            await output.send_response(sender, {"text": reply})
        return bool(reply)

    def add_routes(self, bp: Blueprint) -> None:
        """Routes of one platform only (none by default)."""

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        bp = Blueprint(f"{self.channel}_webhook", type(self).__module__)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok", "enabled": self.settings is not None})

        self.add_routes(bp)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle_webhook(request, on_new_message)

        @bp.listener("after_server_stop")
        async def close(app: Any, loop: Any) -> None:
            await self.runner.drain()
            await self.turns.drain()
            await self.close_client()

        return bp
