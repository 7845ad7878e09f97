"""The Telegram webhook gives each customer message a request id (the caller's, when safe) in the
metadata Rasa hands to the action server, and counts the turn; Rasa's /webhooks/metrics/ shows it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from common import metrics, request_id
from connectors.metrics_input import MetricsInput
from connectors.telegram.callbacks import CallbackPayloads
from connectors.telegram.channel import TelegramInput
from connectors.telegram.config import TelegramSettings, make_bot
from connectors.telegram.output import TelegramSender
from tests.connectors.harness import Recorder, serve
from tests.connectors.tg_helpers import text_update

SECRET = "tg-secret-for-request-ids"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
CHAT = 700000077


def telegram() -> TelegramInput:
    # No Bot API call happens for a plain text message the recorder does not answer.
    settings = TelegramSettings(bot_token="1:x", secret_token=SECRET, api_base_url="http://127.0.0.1:9")
    return TelegramInput(settings, TelegramSender(settings, make_bot(settings), CallbackPayloads()))


async def post(url: str, update: dict, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/webhook", data=json.dumps(update), headers=headers) as r,
    ):
        return r.status


@contextlib.asynccontextmanager
async def serve_metrics(token: str | None) -> AsyncIterator[str]:
    """Rasa's Sanic app with only the metrics "channel" mounted, as Rasa mounts input channels."""
    async with serve(MetricsInput(token), Recorder()) as base:
        yield base + "/"


def turns(channel: str) -> float:
    return metrics.TURNS.labels(channel)._value.get()


async def test_the_webhook_puts_the_id_in_the_metadata_and_counts_the_turn() -> None:
    rec = Recorder()
    before = turns("telegram")
    async with serve(telegram(), rec) as url:
        assert (
            await post(url, text_update(CHAT, "một"), {**HEADERS, request_id.HEADER: "edge-proxy-0001"})
            == 200
        )
        [first] = await rec.wait_for(1)
        assert await post(url, text_update(CHAT, "hai"), {**HEADERS, request_id.HEADER: "not safe!"}) == 200
        [_, second] = await rec.wait_for(2)
    assert first.metadata[request_id.METADATA_KEY] == "edge-proxy-0001"
    made = second.metadata[request_id.METADATA_KEY]
    assert made != "not safe!" and request_id.safe(made) == made
    assert turns("telegram") == before + 2


async def test_rasa_metrics_endpoint() -> None:
    metrics.TURNS.labels("telegram").inc()
    async with serve_metrics(None) as url:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            assert r.status == 200
            text = await r.text()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"cskh_bot_turns", "cskh_bot_reply_seconds", "cskh_channel_send_errors"} <= families


async def test_rasa_metrics_endpoint_with_a_token() -> None:
    async with serve_metrics("scrape-secret-2") as url:
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                assert r.status == 401
            async with s.get(url, headers={"Authorization": "Bearer scrape-secret-2"}) as r:
                assert r.status == 200


async def test_rasa_worker_endpoint_says_which_worker_answered(monkeypatch) -> None:
    """What model activation asks on each connection (agent_desk/training/activation.py): this
    process's pid, the worker count Rasa uses, and the model (none loaded here). Same token."""
    import os

    monkeypatch.setenv("SANIC_WORKERS", "2")  # without a multi-worker lock store Rasa runs one
    async with serve_metrics("scrape-secret-3") as url:
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "worker") as r:
                assert r.status == 401
            async with s.get(url + "worker", headers={"Authorization": "Bearer scrape-secret-3"}) as r:
                assert r.status == 200
                assert await r.json() == {"pid": os.getpid(), "workers": 1, "model_file": None}
