"""Fan-out of notifications through a fake Telegram API (issue 16): notices per second and the time
from the event to the API call.

    .venv/bin/python -m bench.bench_notify                    # 10,000 notices, 1 notifier, PostgreSQL
    .venv/bin/python -m bench.bench_notify --replicas 2       # two notifiers sharing the table
    .venv/bin/python -m bench.bench_notify --steady 40        # then 40 events/s for 15 s (no queue)

A fresh PostgreSQL database gets 500 requests with 5 subscribed Telegram chats each; one
transaction then raises 4 events per request (10,000 notices at once, the worst burst). The
notifier runs as `make run` starts it, except that Telegram's own limit (about 30 messages/s per
bot) is lifted (TELEGRAM_SEND_RATE) to measure the notifier, not Telegram, and notices are not
written into Rasa conversations (no Rasa here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from tempfile import mkdtemp

import psycopg2
from aiohttp import web
from sqlalchemy.engine import make_url

from bench.notify_seed import FIRST_CHAT_ID, raise_burst, seed
from devstack import processes
from signing_service.db import Database

TOKEN = "123456:BENCH-token-abcdefghijklmnopqrstuvwxyz"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class FakeTelegram:
    """sendMessage answers at once; arrival times by chat id."""

    def __init__(self) -> None:
        self.port = processes.free_port()
        self.arrivals: dict[int, list[float]] = {}
        self.loop = asyncio.new_event_loop()

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.time()
        body = (
            await request.json() if request.content_type == "application/json" else dict(await request.post())
        )
        if request.match_info["method"] == "sendMessage":
            chat = int(str(body["chat_id"]))
            self.arrivals.setdefault(chat, []).append(at)
            result = {"message_id": 1, "date": int(at), "chat": {"id": chat, "type": "private"}, "text": "x"}
            return web.json_response({"ok": True, "result": result})
        if request.match_info["method"] == "getMe":
            return web.json_response(
                {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "b", "username": "b"}}
            )
        return web.json_response({"ok": True, "result": True})

    def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        runner = web.AppRunner(app, access_log=None)

        async def up() -> None:
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()

        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(up(), self.loop).result(10)

    def count(self) -> int:
        return sum(len(v) for v in list(self.arrivals.values()))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--subscribers", type=int, default=5)
    parser.add_argument("--events", type=int, default=4, help="events per request in the burst")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--steady", type=float, default=0, help="then events/s for 15 s (0: skip)")
    parser.add_argument("--profile", help="write a pyinstrument profile of the (first) notifier here")
    args = parser.parse_args()

    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = str(make_url(POSTGRES_URL).set(database=name))
    tmp = Path(mkdtemp(prefix="bench-notify-"))
    tg = FakeTelegram()
    tg.start()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "TELEGRAM_", "ZALO_", "RASA_"))
    }
    env.update(
        {
            "APP_ENV": "test",
            "PYTHONPATH": str(processes.ROOT),
            "DATABASE_URL": url,
            "SIGNING_VAR_DIR": str(tmp),
            "OUTBOX_PATH": str(tmp / "outbox.jsonl"),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{tg.port}",
            "TELEGRAM_SEND_RATE": "100000",
            "TELEGRAM_CHAT_RATE": "100000",
            "NOTIFY_QUIET_HOURS": "",
            "NOTIFY_DAILY_CAP": "100",
            "NOTIFY_RECORD_IN_CONVERSATION": "0",
        }
    )
    procs: list[processes.Proc] = []
    db = Database(url)
    loop = asyncio.new_event_loop()
    try:
        made = loop.run_until_complete(seed(db, args.requests, args.subscribers, datetime.now(timezone.utc)))
        for i in range(args.replicas):
            p = processes.notifier(
                processes.Ports(notifier=processes.free_port()), env, tmp / "log", f"notifier-{i}"
            )
            p.start()
            p.wait_healthy(60)
            procs.append(p)
        total = args.requests * args.subscribers * args.events
        cpu0 = sum(_cpu(p) for p in procs)
        t0 = time.time()
        loop.run_until_complete(raise_burst(db, made.request_ids, args.events, datetime.now(timezone.utc)))
        while tg.count() < total and time.time() - t0 < 900:
            time.sleep(0.05)
        last = max(max(v) for v in tg.arrivals.values())
        cpu = sum(_cpu(p) for p in procs) - cpu0
        latencies = [at - t0 for v in tg.arrivals.values() for at in v]
        got = tg.count()
        dup = sum(max(0, len(v) - args.events) for v in tg.arrivals.values())
        print(f"burst: {got}/{total} notices by {args.replicas} notifier(s) in {last - t0:.1f} s")
        print(f"  notices/s          : {got / (last - t0):.0f}")
        p50, p95 = statistics.median(latencies), pct(latencies, 0.95)
        print(f"  event -> API call  : p50 {p50:.2f} s, p95 {p95:.2f} s")
        print(f"  notifier CPU       : {cpu:.1f} s ({1000 * cpu / max(got, 1):.2f} ms per notice)")
        print(f"  duplicates         : {dup}")
        if args.steady:
            steady(loop, db, tg, made.request_ids, args)
    finally:
        for p in procs:
            p.stop()
        loop.run_until_complete(db.close())
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return 0


def steady(
    loop: asyncio.AbstractEventLoop,
    db: Database,
    tg: FakeTelegram,
    request_ids: list[int],
    args: argparse.Namespace,
) -> None:
    """One event at a time, `args.steady` per second: the latency a customer sees on a normal day."""
    raised: dict[int, float] = {}
    before = {chat: len(v) for chat, v in tg.arrivals.items()}
    interval = 1 / args.steady
    t_end = time.time() + 15
    i = 0
    while time.time() < t_end:
        rid = request_ids[i % len(request_ids)]
        raised[i % len(request_ids)] = time.time()
        loop.run_until_complete(raise_burst(db, [rid], 1, datetime.now(timezone.utc)))
        i += 1
        time.sleep(max(0.0, interval - 0.002))
    time.sleep(3)
    latencies = []
    for idx, at in raised.items():
        for k in range(args.subscribers):
            chat = FIRST_CHAT_ID + idx * args.subscribers + k
            arrivals = tg.arrivals.get(chat, [])[before.get(chat, 0) :]
            if arrivals:
                latencies.append(arrivals[-1] - at)
    print(f"steady: {i} events ({i * args.subscribers} notices) at {args.steady:.0f} events/s")
    print(
        f"  event -> API call  : p50 {statistics.median(latencies):.2f} s, p95 {pct(latencies, 0.95):.2f} s"
    )


def _cpu(p: processes.Proc) -> float:
    """User+system CPU seconds of a running process (Linux /proc)."""
    assert p.popen is not None
    fields = Path(f"/proc/{p.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    raise SystemExit(main())
