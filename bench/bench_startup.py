"""Benchmark: Rasa's start-up time and memory, 1 and 2 Sanic workers, with the cached model.

    .venv/bin/python -m bench.bench_startup                       # 1 and 2 workers, one run each
    .venv/bin/python -m bench.bench_startup --workers 2 --runs 3 --load 10
    .venv/bin/python -m bench.bench_startup --env MALLOC_ARENA_MAX=2 --env TF_NUM_INTEROP_THREADS=1

The signing service and the action server start first (they are not timed); then Rasa starts as
`make run` starts it (devstack.processes.rasa_server) and is timed from its launch to the first
answer through the REST channel (devstack/rasa_ready.py). Phases come from Rasa's log, read
while it starts: "Starting Rasa server" (the CLI's imports done, the Sanic parent about to fork),
then one "Rasa server is up and running" per worker (its model loaded). Memory (RSS and PSS of
the Rasa process tree, bench/process_memory.py) is read when ready and at its peak during
`--load` seconds of 20 concurrent customers playing bench_rasa's script.
It prints figures and asserts nothing; the machine's load (`uptime`) is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import loadgen, process_memory
from bench.bench_rasa import ASSISTANT_SCRIPT, assistant_env
from devstack import model, processes, rasa_ready

MARK_SERVING = "Starting Rasa server"
MARK_WORKER_UP = "Rasa server is up and running"


@dataclass
class StartRun:
    workers: int
    ready_s: float | None
    serving_s: float | None = None  # the CLI's imports and set-up done
    workers_up_s: list[float] = field(default_factory=list)
    ready_rss_mb: float = 0.0
    ready_pss_mb: float | None = None
    load_peak_rss_mb: float | None = None
    load_peak_pss_mb: float | None = None
    load_rate: float | None = None
    load_p95_ms: float | None = None
    load_cpu_ms: float | None = None  # Rasa's CPU per turn under load (machine-independent-ish)
    load_avg: str = ""
    launcher: str = ""
    cpu_s: float | None = None  # CPU time of the Rasa tree until every worker was up: moved less by load


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class LogMarks:
    """Reads a growing log file and notes when each marker line first appeared (and how often)."""

    def __init__(self, path: Path, started: float) -> None:
        self.path, self.started, self.offset = path, started, 0
        self.seen: dict[str, list[float]] = {MARK_SERVING: [], MARK_WORKER_UP: []}

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        # Only whole lines: a marker cut in two by a write in progress is read next time.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        now = time.monotonic() - self.started
        for line in complete.decode(errors="replace").splitlines():
            for mark, times in self.seen.items():
                if mark in line:
                    times.append(now)


@contextmanager
def backing_services(root: Path) -> Iterator[tuple[processes.Ports, dict[str, str]]]:
    """Signing service and action server, as bench_rasa's assistant runs them (SQLite in `root`)."""
    ports, env = assistant_env(root)
    procs = [
        processes.signing_service(ports, env, root / "log"),
        processes.action_server(ports, env, root / "log"),
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_healthy(400)
        yield ports, env
    finally:
        for p in reversed(procs):
            p.stop()


def start_rasa_once(
    root: Path,
    ports: processes.Ports,
    env: dict[str, str],
    model_file: Path,
    workers: int,
    load_s: float,
    launcher: str = "deploy.rasa_main",
) -> StartRun:
    log_dir = root / f"log-w{workers}-{time.monotonic_ns()}"
    proc = processes.rasa_server(ports, env, log_dir, model_file, workers=workers, launcher=launcher)
    rest_url = f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook"
    load_avg = load_average()
    started = time.monotonic()
    proc.start()
    assert proc.popen and proc.log_path
    popen = proc.popen
    marks = LogMarks(proc.log_path, started)
    try:
        ready = None
        while time.monotonic() - started < 900 and popen.poll() is None:
            marks.poll()
            if rasa_ready.answers(rest_url, env, sender=f"bench-start-{time.monotonic_ns()}"):
                ready = time.monotonic() - started
                break
            time.sleep(0.25)
        # The other workers may still be loading: wait for each one's "up" line (up to 10 min).
        while ready is not None and len(marks.seen[MARK_WORKER_UP]) < workers and popen.poll() is None:
            if time.monotonic() - started > 900:
                break
            time.sleep(0.25)
            marks.poll()
        mem = process_memory.tree_memory([popen.pid])
        cpu_s = loadgen.tree_cpu_s([popen.pid])
        run = StartRun(
            workers,
            ready,
            marks.seen[MARK_SERVING][0] if marks.seen[MARK_SERVING] else None,
            marks.seen[MARK_WORKER_UP][:workers],
            mem.rss_mb,
            mem.pss_mb,
            load_avg=load_avg,
            launcher=launcher,
            cpu_s=cpu_s,
        )
        if ready is not None and load_s > 0:
            asyncio.run(_under_load(run, rest_url, popen.pid, load_s))
        return run
    finally:
        proc.stop(timeout=30)


async def _under_load(run: StartRun, rest_url: str, pid: int, load_s: float) -> None:
    async with process_memory.PeakMemory([pid]) as peak:
        r = await loadgen.closed_loop(
            rest_url, ASSISTANT_SCRIPT, 20, load_s, label="20 customers", cpu_pids=[pid]
        )
    run.load_peak_rss_mb, run.load_peak_pss_mb = peak.rss_mb, peak.pss_mb
    run.load_rate, run.load_p95_ms, run.load_cpu_ms = r.rate, r.pct(95), r.cpu_ms_per_turn


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "—" if x is None else format(x, spec)


def print_run(run: StartRun) -> None:
    line = (
        f"   {run.launcher}, {run.workers} worker(s): first answer {fmt(run.ready_s)} s, "
        f"{fmt(run.cpu_s)} s CPU (load {run.load_avg}); "
        f"ready {process_memory.describe(run.ready_rss_mb, run.ready_pss_mb)}"
    )
    if run.load_peak_rss_mb is not None:
        peak = process_memory.describe(run.load_peak_rss_mb, run.load_peak_pss_mb)
        line += f"; under load peak {peak}"
    print(line, flush=True)


def print_runs(runs: list[StartRun]) -> None:
    print(
        "\n| launcher | workers | load avg at start | CLI set-up s | workers up s | first answer s | CPU s | "
        "ready RSS / PSS MiB | under load: peak RSS / PSS MiB | msg/s | p95 ms | CPU ms/turn |"
    )
    print("| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        print(
            f"| {r.launcher} | {r.workers} | {r.load_avg} | {fmt(r.serving_s)} | "
            f"{', '.join(f'{x:.1f}' for x in r.workers_up_s) or '—'} | {fmt(r.ready_s)} | {fmt(r.cpu_s)} | "
            f"{r.ready_rss_mb:,.0f} / {fmt(r.ready_pss_mb, ',.0f')} | "
            f"{fmt(r.load_peak_rss_mb, ',.0f')} / {fmt(r.load_peak_pss_mb, ',.0f')} | "
            f"{fmt(r.load_rate)} | {fmt(r.load_p95_ms, '.0f')} | {fmt(r.load_cpu_ms)} |"
        )
    for launcher, w in sorted({(r.launcher, r.workers) for r in runs}):
        ready = [
            r.ready_s for r in runs if (r.launcher, r.workers) == (launcher, w) and r.ready_s is not None
        ]
        if ready:
            print(
                f"  {launcher}, {w} worker(s): first answer after {statistics.median(ready):.1f} s "
                f"(median of {len(ready)})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="Sanic worker counts to time, comma-separated")
    parser.add_argument("--runs", type=int, default=1, help="starts per worker count")
    parser.add_argument("--load", type=float, default=0.0, help="seconds of 20 customers after each start")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for Rasa"
    )
    parser.add_argument("--model", type=Path, help="model file (default: the cached model of this tree)")
    parser.add_argument(
        "--stock",
        action="store_true",
        help="start Rasa as installed (`python -m rasa`: no patches) instead of deploy.rasa_main",
    )
    parser.add_argument(
        "--both",
        action="store_true",
        help="each start twice, stock and deploy.rasa_main, in alternating order (same-minute pairs)",
    )
    args = parser.parse_args(argv)
    launcher = "rasa" if args.stock else "deploy.rasa_main"
    launchers = ["rasa", "deploy.rasa_main"] if args.both else [launcher]
    extra = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env takes KEY=VALUE, got {item!r}")
        extra[key] = value
    model_file = args.model or model.model_path()
    if not model_file.exists():
        parser.error(f"no model at {model_file}: run `make train` first (this benchmark never trains)")
    workers = [int(x) for x in args.workers.split(",") if x.strip()]
    print(
        f">> {os.cpu_count()} CPUs; model {model_file.name}; launchers {', '.join(launchers)}; "
        f"extra env {extra or 'none'}",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="cskh-startup-"))
    runs: list[StartRun] = []
    try:
        with backing_services(root) as (ports, env):
            env = {**env, **extra}
            for i in range(args.runs):
                order = launchers if i % 2 == 0 else launchers[::-1]  # A B, B A, ...
                for w, launcher in ((w, x) for w in workers for x in order):
                    runs.append(start_rasa_once(root, ports, env, model_file, w, args.load, launcher))
                    print_run(runs[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_runs(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
