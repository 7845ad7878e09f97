"""Telegram channel settings from environment variables (see docs/channels.md)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.common import settings as s

_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token
_TOKEN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{20,100}$")


def derived_secret(bot_token: str) -> str:
    """Development default for TELEGRAM_SECRET_TOKEN: the webhook, the set-up command and the
    polling relay all derive the same value, so a developer only sets the bot token."""
    return hmac.new(bot_token.encode(), b"cskh-telegram-webhook", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class TelegramSettings:
    bot_token: str
    secret_token: str
    api_base_url: str = "https://api.telegram.org"  # server root; PTB gets <root>/bot
    send_rate: float = 25.0  # Telegram: about 30 messages/s per bot
    chat_rate: float = 1.0  # and about 1 message/s per chat, short bursts tolerated
    chat_burst: float = 4.0
    text_limit: int = 4096

    @property
    def bot_base_url(self) -> str:
        return f"{self.api_base_url}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.api_base_url}/file/bot"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TelegramSettings | None:
        """Settings, or None when TELEGRAM_BOT_TOKEN is unset (channel disabled)."""
        env = os.environ if env is None else env
        production = s.is_production(env)  # read first: an unknown APP_ENV is refused even with no channel
        token = s.get(env, "TELEGRAM_BOT_TOKEN")
        secret = s.get(env, "TELEGRAM_SECRET_TOKEN")
        if token is None:
            if secret:
                raise s.ConfigError("TELEGRAM_SECRET_TOKEN is set but TELEGRAM_BOT_TOKEN is not")
            return None
        if not _TOKEN.match(token):
            raise s.ConfigError("TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<secret>)")
        if secret is None:
            if production:
                raise s.ConfigError("TELEGRAM_SECRET_TOKEN is required when APP_ENV=production")
            secret = derived_secret(token)
        if not _SECRET.match(secret):
            raise s.ConfigError("TELEGRAM_SECRET_TOKEN must be 1-256 characters of A-Z a-z 0-9 _ -")
        base = (s.get(env, "TELEGRAM_API_BASE_URL") or cls.api_base_url).rstrip("/")
        s.require_https("TELEGRAM_API_BASE_URL", base, env)
        return cls(
            bot_token=token,
            secret_token=secret,
            api_base_url=base,
            send_rate=s.get_float(env, "TELEGRAM_SEND_RATE", cls.send_rate, minimum=0.1),
            chat_rate=s.get_float(env, "TELEGRAM_CHAT_RATE", cls.chat_rate, minimum=0.1),
        )


def make_bot(settings: TelegramSettings):  # -> telegram.Bot (import kept local: PTB is heavy)
    import logging

    from telegram import Bot
    from telegram.request import HTTPXRequest

    # httpx logs every request URL at INFO and PTB logs its API URL at DEBUG: Telegram URLs
    # contain the bot token, so neither may log below these levels (even under `rasa --debug`).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(logging.INFO)

    return Bot(
        settings.bot_token,
        base_url=settings.bot_base_url,
        base_file_url=settings.file_base_url,
        request=HTTPXRequest(connection_pool_size=64, read_timeout=15, connect_timeout=5),
    )
