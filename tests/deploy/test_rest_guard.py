"""deploy/rest_guard.py: what Rasa's REST channel accepts, and from whom (the fuzz test sends the rest).

The HTTP tests serve `GuardedRestInput`'s blueprint (built as Rasa builds it from credentials.yml) on
a real Sanic server; the bot is a recorder that answers "ok".
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import MagicMock

import aiohttp
import pytest
import yaml
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.run import create_http_input_channels
from sanic import Sanic
from sanic.exceptions import InvalidUsage, SanicException

from common import request_id
from common.production import AppEnvError
from common.rasa_client import RasaClient
from common.shared_contact import SHARE_CONTACT_TEXT, shared_contact
from connectors.telegram import output as telegram_output
from connectors.zalo import channel as zalo_channel
from deploy import rest_guard
from deploy.rest_guard import CHAT_SENDER_PREFIXES, GuardedRestInput, RestChannelConfigError, check_body
from devstack.processes import ROOT, free_port

TOKEN = "rest-channel-token-for-tests"


@pytest.mark.parametrize("body", [None, [], 123, "text", {"sender": 5, "message": "x"}, {"message": ["x"]}])
def test_refused(body: object) -> None:
    with pytest.raises(InvalidUsage) as e:
        check_body(body)
    assert e.value.status_code == 400


@pytest.mark.parametrize("body", [{"sender": "a", "message": "xin chào"}, {"message": "x"}, {}])
def test_accepted(body: object) -> None:
    check_body(body)


def test_the_refused_prefixes_are_the_connectors_sender_prefixes() -> None:
    assert set(CHAT_SENDER_PREFIXES) == {zalo_channel.SENDER_PREFIX, telegram_output.SENDER_PREFIX}
    assert zalo_channel.sender_id_for("6142") == "zalo:6142"
    assert telegram_output.sender_id_for(700) == "telegram:700"


def test_stock_rasa_passes_client_metadata_and_input_channel_to_the_tracker() -> None:
    """Why the guard strips them: Rasa 3.6's RestInput hands the body's `metadata` and
    `input_channel` to the UserMessage (rasa/core/channels/rest.py, `receive`)."""
    metadata = shared_contact("+84905123456", "telegram_contact", True)
    request = MagicMock(json={"sender": "x", "message": SHARE_CONTACT_TEXT, "metadata": metadata})
    request.json["input_channel"] = "telegram"
    assert RestInput().get_metadata(request) == metadata
    assert RestInput()._extract_input_channel(request) == "telegram"
    request.headers = {}
    guarded = GuardedRestInput()
    only_the_request_id = guarded.get_metadata(request)
    assert only_the_request_id is not None and list(only_the_request_id) == [request_id.METADATA_KEY]
    assert guarded._extract_input_channel(request) == "rest"


def test_credentials_yml_names_the_guarded_channel_as_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa builds the channel from credentials.yml; the bot, the desk and the tests still see "rest"
    (same name, same /webhooks/rest/webhook URL, tracker input_channel "rest")."""
    monkeypatch.setenv("REST_CHANNEL_TOKEN", TOKEN)
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
    assert "rest" not in credentials, "Rasa's unguarded REST channel must not be configured"
    channels = create_http_input_channels(None, str(ROOT / "credentials.yml"))
    rest = [c for c in channels if isinstance(c, RestInput)]
    assert [type(c) for c in rest] == [GuardedRestInput]
    assert rest[0].name() == rest[0].url_prefix() == "rest"
    assert rest[0].token == TOKEN


class Bot:
    def __init__(self) -> None:
        self.messages: list[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "ok")


@contextlib.asynccontextmanager
async def rest_channel(bot: Bot) -> AsyncIterator[str]:
    """Yields the Rasa base URL of a server with the guarded REST channel (token read now, as at start-up)."""
    channel = GuardedRestInput.from_credentials({"token_env": "REST_CHANNEL_TOKEN"})
    Sanic.test_mode = True
    app = Sanic(f"rest{uuid.uuid4().hex[:10]}")
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/rest")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    await server.start_serving()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def post(
    base: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(base + "/webhooks/rest/webhook", json=body, headers=headers, params=params) as r,
    ):
        return r.status, await r.text()


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)


async def test_client_metadata_and_input_channel_never_reach_the_tracker() -> None:
    """A REST client cannot claim a phone number shared through a connector."""
    bot = Bot()
    forged = {
        "sender": "web-forger",
        "message": SHARE_CONTACT_TEXT,
        "metadata": shared_contact("+84905123456", "telegram_contact", True),
        "input_channel": "telegram",
    }
    async with rest_channel(bot) as base:
        assert (await post(base, forged))[0] == 200
        assert (await post(base, forged, params={"stream": "true"}))[0] == 200
    assert [(m.text, list(m.metadata), m.input_channel) for m in bot.messages] == [
        (SHARE_CONTACT_TEXT, [request_id.METADATA_KEY], "rest")
    ] * 2


async def test_each_rest_message_carries_a_request_id_the_internal_caller_may_choose() -> None:
    bot = Bot()
    async with rest_channel(bot) as base:
        await post(
            base, {"sender": "web-1", "message": "chào"}, headers={request_id.HEADER: "desk-0000000042"}
        )
        await post(base, {"sender": "web-1", "message": "chào"}, headers={request_id.HEADER: "bad id <x>"})
    first, second = (m.metadata[request_id.METADATA_KEY] for m in bot.messages)
    assert first == "desk-0000000042"
    assert request_id.safe(second) and second != "bad id <x>"


@pytest.mark.parametrize(
    "sender", ["zalo:6142000000001", "telegram:700000001", "Telegram:700000001", " zalo:1", "ZALO:x"]
)
async def test_a_rest_client_cannot_write_as_a_zalo_or_telegram_customer(sender: str) -> None:
    bot = Bot()
    async with rest_channel(bot) as base:
        status, _ = await post(base, {"sender": sender, "message": "ký hợp đồng"})
    assert status == 403 and bot.messages == []


async def test_with_rest_channel_token_every_call_must_carry_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_CHANNEL_TOKEN", TOKEN)
    bot = Bot()
    body = {"sender": "web-1", "message": "xin chào"}
    async with rest_channel(bot) as base:
        refused = [
            await post(base, body),
            await post(base, body, {"Authorization": "Bearer wrong"}),
            await post(base, body, {"Authorization": f"Basic {TOKEN}"}),
            await post(base, body, {"Authorization": f"Bearer {TOKEN}x"}),
            await post(base, body, params={"token": "²" + TOKEN}),
            await post(base, body, {"Authorization": "Bearer wrong"}, params={"token": TOKEN}),
        ]
        assert [status for status, _ in refused] == [401] * len(refused)
        assert bot.messages == []
        assert (await post(base, body, {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
        assert (await post(base, body, params={"token": TOKEN}))[0] == 200
        # The token is checked before the body: without it, even a malformed body is a 401.
        assert (await post(base, [], {}))[0] == 401
    assert len(bot.messages) == 2


async def test_production_without_a_token_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa shows a RasaException's message and exits: the channel is never open to anyone."""
    for value in ("production", " Production ", "PRODUCTION"):
        monkeypatch.setenv("APP_ENV", value)
        with pytest.raises(RestChannelConfigError, match="APP_ENV=production needs REST_CHANNEL_TOKEN"):
            GuardedRestInput.from_credentials(None)
        with pytest.raises(RestChannelConfigError, match="needs WEB_TOKEN"):
            GuardedRestInput.from_credentials({"token_env": "WEB_TOKEN"})
    monkeypatch.setenv("APP_ENV", "prod")
    with pytest.raises(RestChannelConfigError, match="APP_ENV must be development, test or production"):
        GuardedRestInput.from_credentials(None)

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("REST_CHANNEL_TOKEN", TOKEN)
    bot = Bot()
    async with rest_channel(bot) as base:
        assert (await post(base, {"sender": "web-1", "message": "x"}))[0] == 401
        assert (await post(base, {"sender": "web-1", "message": "x"}, {"Authorization": f"Bearer {TOKEN}"}))[
            0
        ] == 200
        # Read once at start-up: unsetting it later does not open the channel.
        monkeypatch.delenv("REST_CHANNEL_TOKEN")
        assert (await post(base, {"sender": "web-1", "message": "x"}))[0] == 401
    assert len(bot.messages) == 1


def test_channel_token_is_read_the_same_way_everywhere() -> None:
    assert rest_guard.channel_token({}) is None
    assert rest_guard.channel_token({"APP_ENV": "test", "REST_CHANNEL_TOKEN": "  "}) is None
    assert rest_guard.channel_token({"APP_ENV": " Production", "REST_CHANNEL_TOKEN": f" {TOKEN} "}) == TOKEN
    with pytest.raises(RestChannelConfigError):
        rest_guard.channel_token({"APP_ENV": "production "})
    with pytest.raises(AppEnvError):
        rest_guard.channel_token({"APP_ENV": "prod", "REST_CHANNEL_TOKEN": TOKEN})


async def test_the_projects_callers_keep_working(monkeypatch: pytest.MonkeyPatch) -> None:
    """Development (no token): the conversation tests' and devstack's plain POST, and the desk's web
    chat. Production: the desk sends REST_CHANNEL_TOKEN (agent_desk/rasa_client.py)."""
    bot = Bot()
    async with rest_channel(bot) as base, aiohttp.ClientSession() as session:
        assert (await post(base, {"sender": "conv-1", "message": "xin chào"}))[0] == 200  # Chat.say
        desk = RasaClient(session, base, token="dev-rasa-token")
        assert await desk.rest_message("demo-0123456789abcdef", "xin chào") == [
            {"recipient_id": "demo-0123456789abcdef", "text": "ok"}
        ]
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("REST_CHANNEL_TOKEN", TOKEN)
    async with rest_channel(bot) as base, aiohttp.ClientSession() as session:
        desk = RasaClient(session, base, token="dev-rasa-token")
        assert await desk.rest_message("demo-0123456789abcdef", "còn đó không") == [
            {"recipient_id": "demo-0123456789abcdef", "text": "ok"}
        ]
    assert [m.sender_id for m in bot.messages] == ["conv-1", "demo-0123456789abcdef", "demo-0123456789abcdef"]


def test_refusals_are_sanic_errors_with_their_status() -> None:
    cases: list[tuple[dict[str, str], str | None, int]] = [
        ({"sender": "zalo:1"}, None, 403),
        ({}, TOKEN, 401),
    ]
    for body, token, status in cases:
        with pytest.raises(SanicException) as e:
            rest_guard.check_access({}, {}, token)
            check_body(body)
        assert e.value.status_code == status
