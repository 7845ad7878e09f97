"""How many webhook deliveries per second each connector acknowledges.

Each channel's blueprint runs on a real Sanic server in a child process (as inside Rasa); this
process posts valid deliveries (Zalo: signed with X-ZEvent-Signature; Telegram: with the secret
token header; every one with a fresh id, so none is dropped as a duplicate) with N concurrent
clients and counts the 200 answers. The bot turn that follows an acknowledgement runs in the
background and is replaced by a no-op here: the figure is the acknowledgement capacity of the
connector (signature check, JSON parsing, dedupe, scheduling), not the bot's turn rate.

    .venv/bin/python bench/bench_webhooks.py [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devstack.processes import free_port  # noqa: E402

ZALO_APP_ID = "2553000111"
ZALO_OA_SECRET = "bench-oa-secret"
TG_TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuvwxyz"
TG_SECRET = "bench-secret"


def _serve(channel: str, port: int) -> None:
    """Child process: a Sanic app with one channel blueprint and a no-op bot."""
    import logging

    from sanic import Sanic

    logging.disable(logging.WARNING)
    from connectors.telegram.channel import TelegramInput
    from connectors.telegram.config import TelegramSettings
    from connectors.zalo.channel import ZaloInput
    from connectors.zalo.config import ZaloSettings

    if channel == "zalo":
        settings = ZaloSettings(
            ZALO_APP_ID, ZALO_OA_SECRET, "AT", None, None, api_base_url="http://127.0.0.1:9"
        )
        input_channel: ZaloInput | TelegramInput = ZaloInput(settings)
    else:
        input_channel = TelegramInput(
            TelegramSettings(TG_TOKEN, TG_SECRET, api_base_url="http://127.0.0.1:9")
        )

    async def no_op_bot(message: object) -> None:
        return None

    app = Sanic(f"bench_{channel}")
    app.blueprint(input_channel.blueprint(no_op_bot), url_prefix=f"/webhooks/{channel}")
    app.run(host="127.0.0.1", port=port, access_log=False, motd=False, workers=1)


def _zalo_delivery(i: int) -> tuple[bytes, dict[str, str]]:
    from connectors.zalo.signature import compute_mac

    timestamp = str(int(time.time() * 1000))
    body = {
        "app_id": ZALO_APP_ID,
        "user_id_by_app": "979",
        "event_name": "user_send_text",
        "timestamp": timestamp,
        "sender": {"id": str(6142000000000 + i % 500)},
        "recipient": {"id": "3662"},
        "message": {"msg_id": f"bench-{os.getpid()}-{i}", "text": "tra cứu PC05TK0000123"},
    }
    raw = json.dumps(body).encode()
    mac = compute_mac(ZALO_APP_ID, raw, timestamp, ZALO_OA_SECRET)
    return raw, {"X-ZEvent-Signature": mac, "Content-Type": "application/json"}


def _telegram_delivery(i: int) -> tuple[bytes, dict[str, str]]:
    chat = 700000000 + i % 500
    body = {
        "update_id": 10_000_000 + i,
        "message": {
            "message_id": i,
            "date": int(time.time()),
            "text": "tra cứu PC05TK0000123",
            "chat": {"id": chat, "type": "private", "first_name": "An"},
            "from": {"id": chat, "is_bot": False, "first_name": "An"},
        },
    }
    return json.dumps(body).encode(), {
        "X-Telegram-Bot-Api-Secret-Token": TG_SECRET,
        "Content-Type": "application/json",
    }


async def _load(
    url: str, deliveries: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[float, list[float], int]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue = iter(deliveries)

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for raw, headers in queue:
            t0 = time.perf_counter()
            async with session.post(url, data=raw, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, errors


def _wait_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (loopback)
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def bench(channel: str, requests: int, concurrency: int) -> dict[str, float]:
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(channel, port), daemon=True)
    proc.start()
    try:
        base = f"http://127.0.0.1:{port}/webhooks/{channel}"
        _wait_up(base + "/")
        make = _zalo_delivery if channel == "zalo" else _telegram_delivery
        warmup = [make(-i - 1) for i in range(200)]
        asyncio.run(_load(base + "/webhook", warmup, concurrency))
        deliveries = [make(i) for i in range(requests)]
        elapsed, latencies, errors = asyncio.run(_load(base + "/webhook", deliveries, concurrency))
    finally:
        proc.terminate()
        proc.join(10)
    latencies.sort()
    return {
        "per_second": requests / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--channel", choices=["zalo", "telegram", "all"], default="all")
    args = parser.parse_args()
    channels = ["zalo", "telegram"] if args.channel == "all" else [args.channel]
    print(
        f"{os.cpu_count()} CPUs; {args.requests} deliveries per channel, "
        f"{args.concurrency} concurrent clients"
    )
    for channel in channels:
        r = bench(channel, args.requests, args.concurrency)
        print(
            f"{channel:9s} {r['per_second']:7.0f} deliveries/s acknowledged "
            f"(p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, non-200: {r['errors']:.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
