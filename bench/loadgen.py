"""A closed-loop load generator for Rasa's REST channel (aiohttp).

Each simulated customer plays a conversation script turn by turn: send a message, wait for the
bot's reply, optionally "think", send the next one. When the script ends the customer starts a new
conversation (new sender id). Throughput is completed turns per second over the measured window;
latency is per turn (one POST /webhooks/rest/webhook round trip).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.process_memory import process_tree


@dataclass
class Result:
    label: str
    customers: int
    think_s: float
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    # CPU seconds the server processes used in the measured window (None when not sampled).
    cpu_s: float | None = None

    @property
    def turns(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.turns / self.duration_s if self.duration_s else 0.0

    @property
    def cpu_ms_per_turn(self) -> float | None:
        return self.cpu_s * 1000 / self.turns if self.cpu_s is not None and self.turns else None

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs)) - 1))]


async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> float:
    """One turn; returns latency in ms. Raises on a non-200 reply or a reply that is not a list."""
    t0 = time.perf_counter()
    async with session.post(url, json={"sender": sender, "message": text}) as r:
        body = await r.json(content_type=None)
        if r.status != 200 or not isinstance(body, list):
            raise RuntimeError(f"HTTP {r.status}: {str(body)[:120]}")
    return (time.perf_counter() - t0) * 1000


async def closed_loop(
    url: str,
    script: Sequence[str],
    customers: int,
    duration_s: float,
    think_s: float = 0.0,
    warmup_s: float = 2.0,
    label: str = "",
    cpu_pids: Sequence[int] = (),
) -> Result:
    """Run `customers` concurrent customers for warmup + duration; measure only `duration`.

    With `cpu_pids`, also the CPU time those processes (and their children) used in the window:
    a figure that a slower or busier machine changes less than msg/s.
    """
    res = Result(label, customers, think_s, duration_s)
    start = time.monotonic()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)

    async def customer(n: int) -> None:
        # Stagger the first message a little so 50 customers don't all fire at t=0.
        await asyncio.sleep((n % 10) * 0.01)
        while time.monotonic() < stop_at:
            sender = f"bench-{uuid.uuid4().hex[:12]}"
            for text in script:
                if time.monotonic() >= stop_at:
                    return
                sent_at = time.monotonic()
                try:
                    ms = await send(session, url, sender, text)
                    if sent_at >= measure_from and time.monotonic() <= stop_at:
                        res.latencies_ms.append(ms)
                except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as e:
                    if sent_at >= measure_from:
                        res.errors += 1
                        if len(res.error_samples) < 3:
                            res.error_samples.append(repr(e)[:160])
                if think_s:
                    await asyncio.sleep(think_s)

    async def cpu_window() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        before = await asyncio.to_thread(tree_cpu_s, cpu_pids)
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        res.cpu_s = await asyncio.to_thread(tree_cpu_s, cpu_pids) - before

    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        await asyncio.gather(*(customer(i) for i in range(customers)), *([cpu_window()] if cpu_pids else []))
    return res


async def long_conversation(url: str, script: Sequence[str], turns: int) -> list[float]:
    """One customer, one sender id, `turns` messages cycling through the script; per-turn ms."""
    sender = f"bench-long-{uuid.uuid4().hex[:10]}"
    out: list[float] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        for i in range(turns):
            out.append(await send(session, url, sender, script[i % len(script)]))
    return out


def cycle_median(lat: Sequence[float], turn: int, period: int) -> float:
    """Median latency of one whole script cycle around `turn` (1-based), the cycle starting at the
    script's second message (the first turn of a conversation also starts its session).

    Turns of a script differ in cost (a lookup calls the signing service, "cảm ơn" does not), so
    turn 5 and turn 100 are compared over exactly the same script positions.
    """
    centre = turn - 1 - period // 2
    start = min(range(1, len(lat), period), key=lambda s: abs(s - centre))
    return statistics.median(lat[start : start + period])


def position_median(runs: Sequence[Sequence[float]]) -> list[float]:
    """Per turn position, the median latency over several conversations of the same script."""
    return [statistics.median(r[i] for r in runs) for i in range(min(len(r) for r in runs))]


def window_median(lat: Sequence[float], turn: int, half: int = 2) -> float:
    """Median latency of turns turn-half..turn+half (1-based), to smooth single-turn noise."""
    lo, hi = max(0, turn - 1 - half), min(len(lat), turn + half)
    return statistics.median(lat[lo:hi])


# -- process trees (CPU here; memory in bench/process_memory.py) ----------------------------


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from one pass over /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (fields := _stat(d.name)):
            out[int(d.name)] = int(fields[1])
    return out


def _children(pid: int) -> list[int]:
    return [child for child, parent in _parents().items() if parent == pid]


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the given processes and their living descendants."""
    total = 0
    for pid in process_tree(pids):
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICK


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
