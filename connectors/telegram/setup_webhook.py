"""Register (or remove) the bot's webhook with Telegram.

    python -m connectors.telegram.setup_webhook --url https://bot.example.vn/webhooks/telegram/webhook
    python -m connectors.telegram.setup_webhook --delete

The URL defaults to ``$TELEGRAM_WEBHOOK_URL``, else ``$PUBLIC_WEBHOOK_BASE_URL`` +
``/webhooks/telegram/webhook``. Telegram then sends every update with the secret token header.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from connectors.telegram.config import TelegramSettings, make_bot

WEBHOOK_PATH = "/webhooks/telegram/webhook"
ALLOWED_UPDATES = ["message", "callback_query"]


def webhook_url(arg: str | None) -> str | None:
    if arg:
        return arg
    if os.environ.get("TELEGRAM_WEBHOOK_URL"):
        return os.environ["TELEGRAM_WEBHOOK_URL"]
    base = os.environ.get("PUBLIC_WEBHOOK_BASE_URL")
    return base.rstrip("/") + WEBHOOK_PATH if base else None


async def run(url: str | None, delete: bool, settings: TelegramSettings) -> str:
    bot = make_bot(settings)
    async with bot:
        if delete:
            await bot.delete_webhook()
            return "webhook removed"
        if not url or not url.startswith("https://"):
            raise SystemExit("a public https:// webhook URL is required (--url or TELEGRAM_WEBHOOK_URL)")
        await bot.set_webhook(
            url, secret_token=settings.secret_token, allowed_updates=ALLOWED_UPDATES, max_connections=40
        )
        info = await bot.get_webhook_info()
        return f"webhook set: {info.url} (pending updates: {info.pending_update_count})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="public HTTPS URL of /webhooks/telegram/webhook")
    parser.add_argument("--delete", action="store_true", help="remove the webhook (e.g. before polling)")
    args = parser.parse_args(argv)
    settings = TelegramSettings.from_env()
    if settings is None:
        print("TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    print(asyncio.run(run(webhook_url(args.url), args.delete, settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
