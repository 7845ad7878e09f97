"""Development without a public URL: long-poll Telegram and relay each update to the local
Rasa webhook (the same handler, secret token and dedupe as production).

    make telegram-poll          # RASA_URL defaults to http://127.0.0.1:5005

The webhook is removed first (Telegram refuses getUpdates while one is set). An update is
confirmed to Telegram (offset moves on) only after Rasa acknowledged it, so nothing is lost while
Rasa is still starting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

import aiohttp
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from connectors.telegram.channel import SECRET_HEADER
from connectors.telegram.config import TelegramSettings, make_bot
from connectors.telegram.setup_webhook import ALLOWED_UPDATES, WEBHOOK_PATH

logger = logging.getLogger("connectors.telegram.poll")


async def relay_once(
    bot: Bot, http: aiohttp.ClientSession, webhook: str, secret: str, offset: int | None, timeout: int
) -> int | None:
    """Fetch one batch, post each update in order; return the next offset."""
    batch = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=ALLOWED_UPDATES)
    for update in batch:
        body = json.dumps(update.to_dict()).encode()
        async with http.post(
            webhook, data=body, headers={SECRET_HEADER: secret, "Content-Type": "application/json"}
        ) as resp:
            if resp.status >= 500 or resp.status in (403, 404, 503):
                raise RuntimeError(f"Rasa webhook answered {resp.status} (is the Telegram channel enabled?)")
        offset = update.update_id + 1
    return offset


async def run(settings: TelegramSettings, rasa_url: str, timeout: int = 30, once: bool = False) -> None:
    webhook = rasa_url.rstrip("/") + WEBHOOK_PATH
    bot = make_bot(settings)
    async with bot, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout + 30)) as http:
        await bot.delete_webhook()
        logger.info("polling Telegram, relaying to %s", webhook)
        offset: int | None = None
        while True:
            try:
                offset = await relay_once(bot, http, webhook, settings.secret_token, offset, timeout)
            except (TimedOut, NetworkError, aiohttp.ClientError, RuntimeError) as exc:
                logger.warning("poll/relay failed (%s); retrying in 3 s", exc)
                if once:
                    raise
                await asyncio.sleep(3)
            if once:
                return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="relay Telegram updates to the local Rasa webhook")
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    parser.add_argument("--timeout", type=int, default=30, help="long-poll seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines print the token in URLs
    settings = TelegramSettings.from_env()
    if settings is None:
        print("TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings, args.rasa_url, args.timeout))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
