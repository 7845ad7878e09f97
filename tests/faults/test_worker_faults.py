"""Single-machine configuration (`make run`): one of the two Rasa worker processes dies mid-conversation.

The workers share the SQLite lock store and the windowed SQLite tracker store, so the surviving
worker continues every conversation; nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bench.loadgen import _children, tree_cpu_s
from devstack import processes
from tests.conftest import Stack
from tests.faults.chatter import BackgroundCustomers, post_turn

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CODE = "Điện lực Tam Kỳ, mã PC05TK0000123"
LOCK_LIFETIME = 15  # seconds; a lock held by the dead worker is given up after this
TURNS_PER_CUSTOMER = 24  # 10 customers


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("workers")
    s = Stack(root)
    s.env["TICKET_LOCK_LIFETIME"] = str(LOCK_LIFETIME)
    log = root / "log"
    try:
        s.start(processes.signing_service(s.ports, s.env, log))
        s.start(processes.action_server(s.ports, s.env, log))
        s.start(processes.rasa_server(s.ports, s.env, log, trained_model, workers=2), 900)
        yield s
    finally:
        s.stop()


def _user_texts(db: Path, sender: str) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (sender,)
        ).fetchall()
    return [json.loads(r[0])["text"] for r in rows]


async def test_both_workers_share_a_pooled_client(two_workers: Stack) -> None:
    """A client that keeps its connections open (aiohttp's pool) still reaches both workers."""
    rasa = two_workers.procs["rasa"]
    assert rasa.popen is not None
    workers = [pid for pid in _children(rasa.popen.pid) if pid != rasa.popen.pid]
    before = {pid: tree_cpu_s([pid]) for pid in workers}
    url = f"{two_workers.rasa_url}/webhooks/rest/webhook"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def customer(n: int) -> None:
            for i in range(TURNS_PER_CUSTOMER):
                assert await post_turn(s, url, f"pool-{n}-{uuid.uuid4().hex[:6]}", f"xin chào {i}") == 200

        await asyncio.gather(*(customer(n) for n in range(10)))
    used = {pid: tree_cpu_s([pid]) - before[pid] for pid in workers}
    share = min(used.values()) / sum(used.values())
    seconds = sorted(round(v, 2) for v in used.values())
    print(
        f"\n[workers] {10 * TURNS_PER_CUSTOMER} turns over a pooled client: CPU seconds per worker {seconds}"
    )
    # With connections kept for ever, one worker took nearly everything (a share of about 0.03) in
    # about one run of three. Connections are re-opened after 20 requests on average: 240 turns over
    # 10 connections give about two dozen choices of worker, and a fair split read 0.24 once in CI.
    assert share >= 0.15, used


async def test_kill_one_rasa_worker_mid_conversation(two_workers: Stack) -> None:
    rasa = two_workers.procs["rasa"]
    assert rasa.popen is not None
    workers = [pid for pid in _children(rasa.popen.pid) if pid != rasa.popen.pid]
    assert len(workers) >= 2, f"expected 2 Sanic workers, found {workers}"
    url = f"{two_workers.rasa_url}/webhooks/rest/webhook"
    db = Path(two_workers.env["RASA_EVENTS_DB"])
    sender = f"worker-kill-{uuid.uuid4().hex[:8]}"
    script = ["xin chào", CODE, "cảm ơn", "số hotline là gì", "xin chào", "cảm ơn"]
    # No pause: requests are surely in flight on the worker that dies.
    others = BackgroundCustomers(url, "worker-bg", think=0)
    slowest = 0.0
    resent = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as s:
        others.start(s, 10)
        for text in script[:3]:
            assert await post_turn(s, url, sender, text) == 200
        await asyncio.sleep(1.0)
        others.mark_fault()
        os.kill(workers[0], signal.SIGKILL)
        for text in script[3:]:
            t0 = time.monotonic()
            status = await post_turn(s, url, sender, text)
            while status == 0 and resent < 5:
                # A pooled keep-alive connection of the dead worker: nothing was received, so the
                # channel sends again (Zalo and Telegram redeliver what was not acknowledged).
                resent += 1
                status = await post_turn(s, url, sender, text)
            slowest = max(slowest, time.monotonic() - t0)
            assert status == 200, f"turn {text!r} after the kill failed with {status}"
            assert time.monotonic() - t0 < LOCK_LIFETIME + 15
        await asyncio.sleep(2.0)
        await others.stop()
        # Still answering on the surviving worker.
        assert await post_turn(s, url, f"after-{uuid.uuid4().hex[:6]}", "xin chào") == 200

    assert _user_texts(db, sender) == script, "the tracked conversation lost or repeated a message"
    lost = others.lost(lambda me: _user_texts(db, me))
    after_kill = others.failed_after_fault()
    print(
        f"\n[fault] kill 1 of 2 Rasa workers: slowest turn of the tracked conversation after the kill "
        f"{slowest:.2f} s ({resent} sent again after a reset connection); {len(after_kill)} "
        f"in-flight or pooled requests of 10 background customers failed, the last "
        f"{others.last_failure_after_fault_s():.2f} s after the kill; {others.total_acked} acknowledged "
        f"messages, {sum(map(len, lost.values()))} missing from the tracker store"
    )
    assert not lost, lost
    # A message in flight on the dead worker left its ticket in the conversation's lock: the next
    # one waits for it to expire, then is served (it used to wait until its client gave up: 90 s).
    assert max(others.stalls, default=0) < LOCK_LIFETIME + 15, sorted(others.stalls)[-3:]
    assert others.last_failure_after_fault_s() < 5
    # Only requests in flight on, or kept-alive connections pooled to, the killed worker fail: each
    # of the 10 customers at most twice, as their shared client may hold two connections to it
    # since connections live ~20 requests (RASA_REQUESTS_PER_CONNECTION; 11 failures were seen).
    assert len(after_kill) <= 20
