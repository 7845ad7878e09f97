"""Benchmark: this assistant against the stock `rasa init` starter bot, same load generator.

    .venv/bin/python -m bench.bench_rasa                 # starter, assistant, assistant-scaled
    .venv/bin/python -m bench.bench_rasa --systems starter,assistant --quick

Prints figures (it is not a test and asserts nothing): for each system and load level (closed loop
at 1/10/20/50 concurrent customers, and 20 customers thinking 1 s between turns) msg/s, p50, p95 and
p99 per turn and the throughput ratio to the starter bot; the latency at turn 5 versus turn 100 of
one long conversation; the peak resident memory of the server processes. Every system runs with
the same conversation length (8 turns) and the same load generator (bench/loadgen.py).

Systems:
  starter           `rasa run` on the starter model (in-memory tracker and lock stores).
  assistant         this assistant as `make run` starts it: Rasa with RASA_WORKERS workers (2 on two
                    cores; SQLite lock and windowed tracker stores), action server, signing service.
  assistant-scaled  `make run-scaled` topology: nginx, 2 Rasa, Redis locks, PostgreSQL trackers,
                    RabbitMQ events, 2 action servers, 2 signing replicas on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import loadgen, process_memory, starter
from devstack import model, processes

# 8 turns each. The starter bot gets its own domain (moods); the assistant a request lookup
# (two signing-service calls through the action server) and small talk.
STARTER_SCRIPT = [
    "hello",
    "I am feeling very sad",
    "yes",
    "hi there",
    "great, thanks",
    "are you a bot?",
    "no",
    "goodbye",
]
ASSISTANT_SCRIPT = [
    "xin chào",
    "tôi muốn tra cứu hồ sơ",
    "Điện lực Tam Kỳ, mã PC05TK0000123",
    "xem tài liệu của hồ sơ",
    "cảm ơn",
    "số hotline là gì",
    "bạn là người hay máy",
    "tạm biệt",
]
LEVELS = [(1, 0.0), (10, 0.0), (20, 0.0), (50, 0.0), (20, 1.0)]


@dataclass
class System:
    name: str
    rest_url: str
    pids: list[int]
    script: list[str]
    rasa_pids: list[int] | None = None  # the Rasa server(s) alone, for their memory (default: pids)


@contextmanager
def run_starter(tmp: Path) -> Iterator[System]:
    bot = starter.ensure_starter_bot()
    ports = processes.Ports.free()
    env = processes.stack_env(ports, {"RASA_TELEMETRY_ENABLED": "false"})
    proc = processes.rasa_server(
        ports,
        env,
        tmp / "log-starter",
        starter.starter_model(),
        endpoints=str(bot / "endpoints.yml"),
        credentials=str(bot / "credentials.yml"),
        workers=1,  # `rasa run` as installed: in-memory lock store, one process
        launcher="rasa",  # none of this project's patches (deploy/rasa_main.py)
    )
    proc.name = "starter-rasa"
    try:
        proc.start()
        proc.wait_healthy(400)
        assert proc.popen
        yield System(
            "starter",
            f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook",
            [proc.popen.pid],
            STARTER_SCRIPT,
        )
    finally:
        proc.stop()


def assistant_env(root: Path) -> tuple[processes.Ports, dict[str, str]]:
    """Free ports and the environment of the assistant as `make run` starts it, on SQLite files in
    `root` (bench_startup.py starts its signing service and action server the same way)."""
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {
            "DATABASE_URL": f"sqlite:///{root / 'signing.db'}",
            "OUTBOX_PATH": str(root / "outbox" / "messages.jsonl"),
            "SIGNING_VAR_DIR": str(root),
            "SIGNING_SERVICE_URL": f"http://127.0.0.1:{ports.signing}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports.signing}",
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{ports.actions}/webhook",
            "RASA_URL": f"http://127.0.0.1:{ports.rasa}",
            "RASA_EVENTS_DB": str(root / "rasa_events.db"),
        },
    )
    return ports, env


@contextmanager
def run_assistant(tmp: Path, endpoints: str = "endpoints.yml") -> Iterator[System]:
    model_file = model.ensure_model()
    root = tmp / "assistant"
    ports, env = assistant_env(root)  # stack_env turns Rasa's telemetry off in every process
    log = root / "log"
    procs = [
        processes.signing_service(ports, env, log),
        processes.action_server(ports, env, log),
        processes.rasa_server(ports, env, log, model_file, endpoints=endpoints),
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_healthy(400)
        yield System(
            "assistant",
            f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook",
            [p.popen.pid for p in procs if p.popen],
            ASSISTANT_SCRIPT,
            [p.popen.pid for p in procs if p.popen and p.name == "rasa"],
        )
    finally:
        for p in reversed(procs):
            p.stop()


@contextmanager
def run_scaled(tmp: Path, workers: int = 1, tracker_store: str | None = None) -> Iterator[System]:
    from devstack.scaled import ScaledConfig, ScaledStack

    cfg = ScaledConfig.for_tests(tmp / "scaled", sanic_workers=workers, with_desk=False)
    if tracker_store:
        cfg.tracker_store = tracker_store
    stack = ScaledStack(cfg, model.ensure_model())
    try:
        stack.start()
        yield System(
            "assistant-scaled"
            + (f"-w{workers}" if workers > 1 else "")
            + ("-rasa-sql" if tracker_store == "SQL" else ""),
            f"http://127.0.0.1:{stack.cfg.ports.rasa_api}/webhooks/rest/webhook",
            [p.popen.pid for p in stack.procs.values() if p.popen],
            ASSISTANT_SCRIPT,
        )
    finally:
        stack.stop()
        stack.drop_databases()


@dataclass
class SystemReport:
    name: str
    results: list[loadgen.Result]
    turn5_ms: float
    turn100_ms: float
    peak_rss_mb: float  # every process of the system (Rasa, action server, signing service...)
    peak_pss_mb: float | None = None
    rasa_rss_mb: float | None = None  # the Rasa process tree alone (Sanic parent and workers)
    rasa_pss_mb: float | None = None


async def measure(
    system: System, duration: float, long_turns: int, levels: bool = True, long_runs: int = 5
) -> SystemReport:
    results = []
    rasa_mem = process_memory.PeakMemory(system.rasa_pids or system.pids)
    async with process_memory.PeakMemory(system.pids) as mem, rasa_mem:
        # Warm every code path once (first calls load lazily imported modules, JIT-ish caches).
        await loadgen.long_conversation(system.rest_url, system.script, len(system.script))
        for customers, think in LEVELS if levels else []:
            label = f"{customers} customers" + (f", think {think:.0f} s" if think else "")
            r = await loadgen.closed_loop(
                system.rest_url,
                system.script,
                customers,
                duration * (1.5 if think else 1.0),
                think,
                label=label,
                cpu_pids=system.pids,
            )
            print_level(system.name, r)
            results.append(r)
        # Several long conversations, one after the other: a single one is at the mercy of a
        # second of machine noise (one run read 1.27x where five others read 0.90-1.09x).
        longs = [
            await loadgen.long_conversation(system.rest_url, system.script, long_turns)
            for _ in range(long_runs)
        ]
    period = len(system.script)
    per_run = [loadgen.cycle_median(x, 100, period) / loadgen.cycle_median(x, 5, period) for x in longs]
    long = loadgen.position_median(longs)
    t5, t100 = loadgen.cycle_median(long, 5, period), loadgen.cycle_median(long, 100, period)
    print(
        f"   {system.name:18} {len(longs)} long conversations: turn 5 {t5:.1f} ms, turn 100 {t100:.1f} ms "
        f"({t100 / t5:.2f}x; per conversation {', '.join(f'{x:.2f}' for x in per_run)}); "
        f"peak {process_memory.describe(mem.rss_mb, mem.pss_mb)}; "
        f"Rasa alone {process_memory.describe(rasa_mem.rss_mb, rasa_mem.pss_mb)}",
        flush=True,
    )
    return SystemReport(
        system.name, results, t5, t100, mem.rss_mb, mem.pss_mb, rasa_mem.rss_mb, rasa_mem.pss_mb
    )


def print_level(name: str, r: loadgen.Result) -> None:
    print(
        f"   {name:18} {r.label:24} {r.rate:6.1f} msg/s  p50 {r.pct(50):6.0f}  "
        f"p95 {r.pct(95):6.0f}  p99 {r.pct(99):6.0f} ms  CPU {r.cpu_ms_per_turn or 0:5.1f} ms/turn  "
        f"errors {r.errors}" + (f"  e.g. {r.error_samples[0]}" if r.error_samples else ""),
        flush=True,
    )


@dataclass
class PairedReport:
    name: str
    ratios: list[float]
    cpu_ratios: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)


async def paired_rounds(
    base: System, other: System, customers: int, rounds: int, duration: float
) -> PairedReport:
    """Alternate short rounds of the starter and another system, both already running, in the order
    A B B A A B ...: the machine's speed drifts from minute to minute (a 2-core VM), and each
    pair of neighbouring rounds sees about the same machine. The ratio of each pair, and their
    median, is the throughput verdict; CPU ms per turn is the machine-independent cross-check.
    """
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    label = f"{customers} customers"
    for i in range(rounds):
        order = (base, other) if i % 2 == 0 else (other, base)
        got: dict[str, loadgen.Result] = {}
        for system in order:
            got[system.name] = r = await loadgen.closed_loop(
                system.rest_url, system.script, customers, duration, label=label, cpu_pids=system.pids
            )
            print_level(f"{system.name} #{i + 1}", r)
        a, b = got[base.name], got[other.name]
        ratios.append(b.rate / a.rate if a.rate else float("nan"))
        if a.cpu_ms_per_turn and b.cpu_ms_per_turn:
            cpu_ratios.append(a.cpu_ms_per_turn / b.cpu_ms_per_turn)
        print(f"   round {i + 1}: {other.name} {ratios[-1]:.2f}x {base.name}", flush=True)
    return PairedReport(other.name, ratios, cpu_ratios)


def print_paired(reports: Sequence[PairedReport], rounds_s: float) -> None:
    if not reports:
        return
    print(f"\nPaired rounds at 20 concurrent customers, {rounds_s:.0f} s each, alternating:")
    print("| system | ratio per round | median | starter CPU / system CPU per turn (median) |")
    print("| --- | --- | ---: | ---: |")
    for p in reports:
        cpu = f"{statistics.median(p.cpu_ratios):.2f}" if p.cpu_ratios else "—"
        print(f"| {p.name} | {', '.join(f'{x:.2f}' for x in p.ratios)} | {p.median:.2f} | {cpu} |")


def print_table(reports: Sequence[SystemReport], paired: Sequence[PairedReport] = ()) -> None:
    base = {r.label: r.rate for r in reports[0].results} if reports[0].name == "starter" else {}
    print("\n| system | load | msg/s | p50 ms | p95 ms | p99 ms | CPU ms/turn | errors | × starter |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rep in reports:
        for r in rep.results:
            ratio = f"{r.rate / base[r.label]:.2f}" if base.get(r.label) else "—"
            cpu = f"{r.cpu_ms_per_turn:.1f}" if r.cpu_ms_per_turn else "—"
            print(
                f"| {rep.name} | {r.label} | {r.rate:.1f} | {r.pct(50):.0f} | {r.pct(95):.0f} | "
                f"{r.pct(99):.0f} | {cpu} | {r.errors} | {ratio} |"
            )
    print(
        "\n| system | turn 5 ms | turn 100 ms | ratio | peak RSS MiB | peak PSS MiB | "
        "Rasa alone: peak RSS MiB | Rasa alone: peak PSS MiB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rep in reports:
        print(
            f"| {rep.name} | {rep.turn5_ms:.0f} | {rep.turn100_ms:.0f} | "
            f"{rep.turn100_ms / rep.turn5_ms:.2f} | {rep.peak_rss_mb:.0f} | {_mib(rep.peak_pss_mb)} | "
            f"{_mib(rep.rasa_rss_mb)} | {_mib(rep.rasa_pss_mb)} |"
        )
    if base:
        print(
            "\nTargets: >=3x starter at 20 concurrent; p95 <= 300 ms at 20 customers thinking 1 s; "
            "turn 100 <= 1.2x turn 5."
        )
        pairs = {p.name: p for p in paired}
        for rep in reports[1:]:
            by = {r.label: r for r in rep.results}
            r20, rt = by["20 customers"], by["20 customers, think 1 s"]
            # The paired rounds are the verdict when they ran; one level run alone is at the mercy
            # of the machine's drift between the two systems' runs.
            x20 = pairs[rep.name].median if rep.name in pairs else r20.rate / base["20 customers"]
            how = "median of paired rounds" if rep.name in pairs else "one run each"
            print(
                f"  {rep.name}: {x20:.2f}x at 20 concurrent ({how}) "
                f"[{'ok' if x20 >= 3 else 'MISSED'}]; "
                f"p95 {rt.pct(95):.0f} ms with think time [{'ok' if rt.pct(95) <= 300 else 'MISSED'}]; "
                f"turn 100/turn 5 {rep.turn100_ms / rep.turn5_ms:.2f} "
                f"[{'ok' if rep.turn100_ms <= 1.2 * rep.turn5_ms else 'MISSED'}]"
            )


def _mib(x: float | None) -> str:
    return "—" if x is None else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="starter,assistant,assistant-scaled")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per load level")
    parser.add_argument("--quick", action="store_true", help="5 s per level (a smoke run)")
    parser.add_argument("--long-turns", type=int, default=105)
    parser.add_argument(
        "--long-runs", type=int, default=5, help="long conversations per system (median per turn)"
    )
    parser.add_argument("--workers", type=int, default=1, help="Sanic workers per scaled Rasa instance")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--endpoints", default="endpoints.yml", help="Rasa endpoints of the assistant system")
    parser.add_argument("--long-only", action="store_true", help="only the long conversation and memory")
    parser.add_argument(
        "--paired-rounds",
        type=int,
        default=6,
        help="alternating starter/system rounds at 20 customers for the throughput verdict (0: none)",
    )
    args = parser.parse_args(argv)
    duration = 5.0 if args.quick else args.duration
    runners: dict[str, Callable[[Path], object]] = {
        "starter": run_starter,
        "assistant": lambda tmp: run_assistant(tmp, args.endpoints),
        "assistant-scaled": lambda tmp: run_scaled(tmp, args.workers),
        # The same topology on Rasa's own SQL tracker store (no event window), for comparison.
        "assistant-scaled-rasa-sql": lambda tmp: run_scaled(tmp, args.workers, "SQL"),
    }
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [n for n in names if n not in runners]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {list(runners)}")
    print(
        f">> {loadgen.cpu_count()} CPUs; {duration:.0f} s per level; systems: {', '.join(names)}", flush=True
    )
    reports: list[SystemReport] = []
    paired: list[PairedReport] = []
    tmp = Path(tempfile.mkdtemp(prefix="cskh-bench-"))
    try:
        # All systems run at once (idle ones cost memory, not CPU), so the paired rounds can
        # alternate between them without restarting anything.
        with ExitStack() as stack:
            systems: list[System] = []
            for name in names:
                print(f">> starting {name}", flush=True)
                t0 = time.monotonic()
                systems.append(stack.enter_context(runners[name](tmp)))  # type: ignore[arg-type]
                print(f">> {name} up in {time.monotonic() - t0:.0f} s", flush=True)
            for system in systems:
                print(f">> measuring {system.name}", flush=True)
                reports.append(
                    asyncio.run(
                        measure(system, duration, args.long_turns, not args.long_only, max(1, args.long_runs))
                    )
                )
            if systems[0].name == "starter" and args.paired_rounds and not args.long_only:
                for other in systems[1:]:
                    print(f">> paired rounds: starter / {other.name}", flush=True)
                    paired.append(
                        asyncio.run(paired_rounds(systems[0], other, 20, args.paired_rounds, duration))
                    )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.long_only:
        for r in reports:
            print(
                f"| {r.name} | turn 5 {r.turn5_ms:.0f} ms | turn 100 {r.turn100_ms:.0f} ms | "
                f"{r.turn100_ms / r.turn5_ms:.2f}x | "
                f"peak {process_memory.describe(r.peak_rss_mb, r.peak_pss_mb)} | "
                f"Rasa alone {process_memory.describe(r.rasa_rss_mb or 0, r.rasa_pss_mb)} |"
            )
        return 0
    print_table(reports, paired)
    print_paired(paired, duration)
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {
                        "system": r.name,
                        "turn5_ms": r.turn5_ms,
                        "turn100_ms": r.turn100_ms,
                        "peak_rss_mb": r.peak_rss_mb,
                        "peak_pss_mb": r.peak_pss_mb,
                        "rasa_peak_rss_mb": r.rasa_rss_mb,
                        "rasa_peak_pss_mb": r.rasa_pss_mb,
                        "paired_ratios": next((p.ratios for p in paired if p.name == r.name), None),
                        "levels": [
                            {
                                "label": x.label,
                                "msg_s": x.rate,
                                "p50": x.pct(50),
                                "p95": x.pct(95),
                                "p99": x.pct(99),
                                "errors": x.errors,
                                "cpu_ms_per_turn": x.cpu_ms_per_turn,
                                "turns": x.turns,
                            }
                            for x in r.results
                        ],
                    }
                    for r in reports
                ],
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
