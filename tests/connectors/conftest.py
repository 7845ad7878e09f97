"""Fixtures for connector tests: fake platform APIs and channel settings pointing at them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connectors.telegram.config import TelegramSettings
from connectors.zalo.config import ZaloSettings
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi

if TYPE_CHECKING:
    from tests.connectors.e2e_support import ChannelStack

ZALO_APP_ID = "2553000111"
ZALO_OA_SECRET = "oa-secret-KEY-for-tests"
ZALO_APP_SECRET = "app-secret-for-tests"
TG_TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
TG_SECRET = "tg-secret_token-123"


@pytest.fixture
def fake_zalo() -> Iterator[FakeZaloApi]:
    with FakeZaloApi("AT-initial", "RT-initial", ZALO_APP_ID, ZALO_APP_SECRET) as fake:
        yield fake


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi(TG_TOKEN) as fake:
        yield fake


@pytest.fixture(autouse=True)
def bot_failures_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Messages a failing stand-in bot could not handle go to a private store, never the repository's var/."""
    url = f"sqlite:///{tmp_path / 'bot_failures.db'}"
    monkeypatch.setenv("BOT_FAILURES_URL", url)
    return url


@pytest.fixture
def failures_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "channel_failures.jsonl"
    monkeypatch.setenv("CHANNEL_FAILURES_PATH", str(path))
    return path


@pytest.fixture
def zalo_settings(fake_zalo: FakeZaloApi, tmp_path: Path) -> ZaloSettings:
    return ZaloSettings(
        app_id=ZALO_APP_ID,
        oa_secret_key=ZALO_OA_SECRET,
        access_token="AT-initial",
        refresh_token="RT-initial",
        app_secret=ZALO_APP_SECRET,
        api_base_url=fake_zalo.url,
        oauth_base_url=fake_zalo.url,
        token_store_path=tmp_path / "zalo_tokens.json",
        send_rate=1000,
    )


@pytest.fixture
def telegram_settings(fake_telegram: FakeTelegramApi) -> TelegramSettings:
    return TelegramSettings(
        bot_token=TG_TOKEN,
        secret_token=TG_SECRET,
        api_base_url=fake_telegram.url,
        send_rate=1000,
        chat_rate=1000,
        chat_burst=1000,
    )


@pytest.fixture(scope="package")  # stopped after tests/connectors: its Rasa worker (~1.3 GB) freed
def shared_channel_stack(
    tmp_path_factory: pytest.TempPathFactory, trained_model: Path
) -> Iterator[ChannelStack]:
    """One Rasa server (with its action server and signing service) whose Zalo and Telegram channels
    point at fake platform APIs, for every end-to-end channel module: each module asks for
    `fresh_signing()` (its own database and outbox) instead of starting a Rasa server of its own."""
    from tests.connectors.e2e_support import ChannelStack  # noqa: PLC0415 (e2e modules only)

    cs = ChannelStack(tmp_path_factory.mktemp("channels"), trained_model)
    cs.start(float(os.environ.get("RASA_START_TIMEOUT", "900")))  # a busy machine: minutes
    try:
        yield cs
    finally:
        cs.stop()
