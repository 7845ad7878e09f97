"""What both channels get from connectors.common.webhook: health, webhook routes, set-up, shutdown."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from sanic import Sanic

from connectors.common.webhook import WebhookInput
from connectors.telegram.channel import TelegramInput
from connectors.telegram.config import TelegramSettings
from connectors.telegram.output import TelegramSender
from connectors.zalo.api import ZaloApi
from connectors.zalo.channel import ZaloInput
from connectors.zalo.config import ZaloSettings
from tests.connectors.conftest import TG_SECRET, ZALO_APP_ID, ZALO_OA_SECRET
from tests.connectors.harness import Recorder, serve
from tests.connectors.tg_helpers import text_update
from tests.connectors.zalo_helpers import event, signed

ZALO_ENV = ("ZALO_APP_ID", "ZALO_OA_SECRET_KEY", "ZALO_ACCESS_TOKEN", "ZALO_REFRESH_TOKEN", "ZALO_APP_SECRET")
TELEGRAM_ENV = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_SECRET_TOKEN")


class Closable:
    """Stands in for the platform client: only records that the channel closed it."""

    closed = False

    async def close(self) -> None:
        self.closed = True


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


async def test_health_says_whether_each_channel_is_enabled(
    zalo_settings: ZaloSettings, telegram_settings: TelegramSettings
) -> None:
    channels: list[WebhookInput[Any]] = [
        ZaloInput(zalo_settings),
        ZaloInput(None),
        TelegramInput(telegram_settings),
        TelegramInput(None),
    ]
    for channel in channels:
        async with serve(channel, Recorder()) as url:
            async with aiohttp.ClientSession() as s, s.get(url + "/") as r:
                assert r.status == 200
                assert await r.json() == {"status": "ok", "enabled": channel.settings is not None}


async def test_only_zalo_answers_the_get_probe_on_its_webhook(
    zalo_settings: ZaloSettings, telegram_settings: TelegramSettings
) -> None:
    async with serve(ZaloInput(zalo_settings), Recorder()) as url:
        assert await get(url + "/webhook") == (200, "ok")
    async with serve(TelegramInput(telegram_settings), Recorder()) as url:
        assert (await get(url + "/webhook"))[0] == 405


@pytest.mark.parametrize(
    ("cls", "env", "logged"),
    [
        (
            ZaloInput,
            ZALO_ENV,
            "Zalo channel disabled: ZALO_APP_ID/ZALO_OA_SECRET_KEY/ZALO_ACCESS_TOKEN unset",
        ),
        (TelegramInput, TELEGRAM_ENV, "Telegram channel disabled: TELEGRAM_BOT_TOKEN unset"),
    ],
)
def test_unset_environment_disables_the_channel_and_says_so(
    cls: type[WebhookInput[Any]],
    env: tuple[str, ...],
    logged: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in env:
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO):
        channel = cls.from_credentials(None)
    assert type(channel) is cls
    assert channel.settings is None and channel.get_output_channel() is None
    assert [(r.name, r.getMessage()) for r in caplog.records] == [(cls.__module__, logged)]


def test_telegram_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:TEST-token-abcdefghijklmnopqrstuvwxyz")
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", "from-env-secret")
    channel = TelegramInput.from_credentials(None)
    assert channel.settings is not None and channel.settings.secret_token == "from-env-secret"


@pytest.mark.parametrize("platform", ["zalo", "telegram"])
async def test_the_platform_client_is_closed_when_the_server_stops(
    platform: str, zalo_settings: ZaloSettings, telegram_settings: TelegramSettings
) -> None:
    client = Closable()
    channel: WebhookInput[Any] = (
        ZaloInput(zalo_settings, cast(ZaloApi, client))
        if platform == "zalo"
        else TelegramInput(telegram_settings, cast(TelegramSender, client))
    )
    Sanic.test_mode = True
    app = Sanic(f"t{uuid.uuid4().hex[:10]}")
    app.blueprint(channel.blueprint(Recorder()), url_prefix=f"/webhooks/{channel.name()}")
    server = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    assert not client.closed
    await server.after_stop()
    assert client.closed
    server.close()
    await server.wait_closed()


async def test_a_redelivery_is_answered_dropped_and_logged_by_each_channel(
    zalo_settings: ZaloSettings, telegram_settings: TelegramSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    zalo_body, zalo_headers = signed(
        event("user_send_text", text="một", msg_id="again-1"), ZALO_APP_ID, ZALO_OA_SECRET
    )
    tg_headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
    deliveries: list[tuple[WebhookInput[Any], bytes, dict[str, str]]] = [
        (ZaloInput(zalo_settings), zalo_body, zalo_headers),
        (TelegramInput(telegram_settings), json.dumps(text_update(700000002, "một")).encode(), tg_headers),
    ]
    for channel, body, headers in deliveries:
        rec = Recorder()
        async with serve(channel, rec) as url, aiohttp.ClientSession() as s:
            statuses = []
            for _ in range(2):
                async with s.post(url + "/webhook", data=body, headers=headers) as r:
                    statuses.append((r.status, (await r.json())["status"]))
            await rec.wait_for(1)
        assert statuses == [(200, "accepted"), (200, "duplicate")]
        assert len(rec.messages) == 1
    dropped = [(r.name, r.getMessage()) for r in caplog.records if r.getMessage().startswith("duplicate")]
    assert dropped == [
        ("connectors.zalo.channel", "duplicate Zalo delivery user_send_text dropped"),
        ("connectors.telegram.channel", "duplicate Telegram update dropped"),
    ]


UNICODE_DIGITS = ("²", "٣", "１", "١٢٣", "１２３")  # str.isdigit() is True for all; int() takes some


async def test_unicode_digits_in_paths_queries_and_numbers_give_4xx_never_500(
    zalo_settings: ZaloSettings, telegram_settings: TelegramSettings
) -> None:
    """The connectors' routes have no path or query parameters: an unknown path is 404 and a query
    is ignored. The numbers they do read (Zalo's `timestamp`, Telegram's `update_id` and chat id)
    take ASCII digits only, anything else is 400."""
    tg_headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
    statuses: list[int] = []
    for channel in (ZaloInput(zalo_settings), TelegramInput(telegram_settings)):
        rec = Recorder()
        async with serve(channel, rec) as url, aiohttp.ClientSession() as s:
            for d in UNICODE_DIGITS:
                quoted = quote(d)
                for method, path in (("GET", "/"), ("GET", "/webhook"), ("POST", "/webhook")):
                    for target in (f"{path}{quoted}", f"{path.rstrip('/')}/{quoted}", f"/{quoted}{path}"):
                        async with s.request(method, url + target, data=b"{}") as r:
                            assert r.status == 404, (method, target)
                            statuses.append(r.status)
                    query = urlencode({"timestamp": d, "update_id": d, "token": d, "num_retry": d})
                    async with s.request(method, f"{url}{path}?{query}", data=b"{}") as r:
                        assert r.status < 500, (method, path, d)
                        statuses.append(r.status)
                if channel.name() == "zalo":
                    body = {**event("user_send_text", text="x"), "timestamp": d * 13}
                    raw, headers = signed(body, ZALO_APP_ID, ZALO_OA_SECRET)
                    async with s.post(url + "/webhook", data=raw, headers=headers) as r:
                        assert r.status == 400
                    raw, headers = signed(event("user_send_text", text="x"), ZALO_APP_ID, ZALO_OA_SECRET)
                    async with s.post(
                        url + "/webhook", data=raw, headers={**headers, "X-ZEvent-Timestamp": d}
                    ) as r:  # the header is only a MAC candidate: the body's timestamp signed it
                        assert r.status == 200
                else:
                    for odd in ({"update_id": d, "message": {}}, text_update(1, "x")):
                        if "message" in odd and "chat" in odd["message"]:
                            odd["message"]["chat"]["id"] = d
                        async with s.post(url + "/webhook", data=json.dumps(odd), headers=tg_headers) as r:
                            assert r.status == 400
    assert statuses and max(statuses) < 500
