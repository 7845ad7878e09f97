"""The benchmark's own arithmetic and sampling (bench/loadgen.py): its figures are only as good
as these."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from aiohttp import web

from bench import loadgen


def test_cycle_median_compares_the_same_script_positions() -> None:
    period = 4
    # Script positions cost 1, 2, 3, 10 ms; conversation slows down by +1 ms from turn 50 on.
    lat = [(1, 2, 3, 10)[i % period] + (1 if i >= 49 else 0) for i in range(105)]
    t5, t100 = loadgen.cycle_median(lat, 5, period), loadgen.cycle_median(lat, 100, period)
    assert (t5, t100) == (2.5, 3.5)


def test_position_median_takes_each_turn_over_the_runs() -> None:
    runs = [[1.0, 9.0, 3.0], [2.0, 1.0, 3.0], [100.0, 2.0, 3.0, 4.0]]
    assert loadgen.position_median(runs) == [2.0, 2.0, 3.0]


def test_percentiles_and_cpu_per_turn() -> None:
    r = loadgen.Result("x", 1, 0.0, 2.0, latencies_ms=[float(i) for i in range(1, 101)], cpu_s=0.5)
    assert (r.pct(50), r.pct(95), r.pct(99), r.rate) == (50.0, 95.0, 99.0, 50.0)
    assert r.cpu_ms_per_turn == 5.0
    assert loadgen.Result("y", 1, 0.0, 1.0).cpu_ms_per_turn is None


def test_tree_cpu_counts_living_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"]
    )
    try:
        time.sleep(0.3)
        before = loadgen.tree_cpu_s([os.getpid()])
        time.sleep(1.0)  # this process sleeps: what is counted is the child spinning
        used = loadgen.tree_cpu_s([os.getpid()]) - before
    finally:
        child.kill()
        child.wait()
    assert 0.6 <= used <= 1.3, used


async def test_closed_loop_counts_turns_errors_and_cpu(aiohttp_server: object) -> None:
    calls = 0

    async def webhook(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        body = await request.json()
        if body["message"] == "boom":
            return web.json_response({"error": "x"}, status=500)
        return web.json_response([{"recipient_id": body["sender"], "text": "ok"}])

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    server = await aiohttp_server(app)  # type: ignore[operator]
    url = f"http://127.0.0.1:{server.port}/webhooks/rest/webhook"
    r = await loadgen.closed_loop(url, ["a", "b", "boom"], 3, 1.0, warmup_s=0.2, cpu_pids=[os.getpid()])
    assert r.turns > 30 and r.errors > 10 and r.error_samples and "HTTP 500" in r.error_samples[0]
    assert calls >= r.turns + r.errors
    assert r.cpu_s is not None and r.cpu_s > 0
