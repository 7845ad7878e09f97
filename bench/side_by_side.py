"""Two versions of the assistant under load at the same time: an A/B that the machine's drift cannot fake.

    .venv/bin/python -m bench.side_by_side --a /path/to/other/checkout            # A: another commit
    .venv/bin/python -m bench.side_by_side --a . --env-a TF_ENABLE_ONEDNN_OPTS=0   # A: a setting
    .venv/bin/python -m bench.side_by_side --a ../base --customers 10 --duration 25 --rounds 3

On this project's shared 2-core machines, runs minutes apart differed by ±20 % in CPU per turn (the
starter bot alone read 17.8 and 25.6 ms in one hour), far more than most changes worth measuring.
Here each side (A: `--a`, B: this checkout, or `--b`) starts its whole assistant as `bench_rasa`
does (its own code, its model through `devstack.model.ensure_model`, cached by data hash: a
checkout whose data differs trains its own model first), warms up, and both start their load at
the same moment. Both then see the same machine, minute for minute. Per round: msg/s and CPU per
turn of each side's process tree, and B against A.

CPU per turn is the figure to read; msg/s shows how each side fares when the other competes for the
cores (a version that waits on threads the busy machine does not schedule loses throughput here
even at equal CPU: TensorFlow without oneDNN did, half the msg/s of the other side).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY, RESULT = "SIDE-READY", "SIDE-RESULT "
START_TIMEOUT_S = 900  # a side whose model must be trained first


def serve(go_file: Path, customers: int, duration: float, rounds: int) -> None:
    """One side, run inside its own checkout: start, warm up, wait for `go_file`, load, report."""
    from bench import bench_rasa, loadgen

    with tempfile.TemporaryDirectory() as tmp, bench_rasa.run_assistant(Path(tmp)) as system:
        asyncio.run(loadgen.closed_loop(system.rest_url, system.script, customers, 4.0))
        print(READY, flush=True)
        while not go_file.exists():
            time.sleep(0.05)
        for n in range(rounds):
            result = asyncio.run(
                loadgen.closed_loop(
                    system.rest_url, system.script, customers, duration, warmup_s=2.0, cpu_pids=system.pids
                )
            )
            row = {"round": n, "rate": result.rate, "cpu_ms": result.cpu_ms_per_turn, "errors": result.errors}
            print(RESULT + json.dumps(row), flush=True)


def summary(a: Sequence[dict[str, float]], b: Sequence[dict[str, float]]) -> list[str]:
    """The table: per round each side's msg/s and CPU ms per turn, B's CPU against A's; medians."""
    lines = [
        "| round | A msg/s | A CPU ms/turn | B msg/s | B CPU ms/turn | B CPU / A CPU |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for ra, rb in zip(a, b, strict=True):
        ratio = rb["cpu_ms"] / ra["cpu_ms"] if ra["cpu_ms"] and rb["cpu_ms"] else float("nan")
        ratios.append(ratio)
        cells = [f"{ra['round']:.0f}", f"{ra['rate']:.1f}", f"{ra['cpu_ms']:.2f}"]
        cells += [f"{rb['rate']:.1f}", f"{rb['cpu_ms']:.2f}", f"{ratio:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if ratios:
        cpu_a, cpu_b = statistics.median(r["cpu_ms"] for r in a), statistics.median(r["cpu_ms"] for r in b)
        lines.append(
            f"median: A {cpu_a:.2f} ms, B {cpu_b:.2f} ms CPU per turn; B / A {statistics.median(ratios):.3f}"
        )
    errors = sum(r["errors"] for r in [*a, *b])
    if errors:
        lines.append(f"WARNING: {errors:.0f} failed turns: compare nothing until they are gone")
    return lines


def _side(
    checkout: Path, env: dict[str, str], go_file: Path, args: argparse.Namespace, log: Path
) -> subprocess.Popen[str]:
    python = checkout / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{checkout}: no .venv (run `make setup` there, or link this checkout's .venv)")
    cmd = [str(python), "-m", "bench.side_by_side", "--serve", str(go_file)]
    cmd += [
        "--customers",
        str(args.customers),
        "--duration",
        str(args.duration),
        "--rounds",
        str(args.rounds),
    ]
    with log.open("w") as out:
        return subprocess.Popen(
            cmd, cwd=checkout, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=out, text=True
        )


def _read_until_ready(name: str, proc: subprocess.Popen[str], deadline: float) -> None:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"side {name} stopped before it was ready (see its log)")
        if line.strip() == READY:
            return
    raise SystemExit(f"side {name} not ready after {START_TIMEOUT_S} s")


def _results(proc: subprocess.Popen[str]) -> list[dict[str, float]]:
    out, _ = proc.communicate()
    return [json.loads(line[len(RESULT) :]) for line in out.splitlines() if line.startswith(RESULT)]


def _env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env-a/--env-b take NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, help="checkout of side A (default: this one)")
    parser.add_argument("--b", type=Path, help="checkout of side B (default: this one)")
    parser.add_argument("--env-a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--customers", type=int, default=10, help="concurrent customers on each side")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds measured per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: run one side
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.customers, args.duration, args.rounds)
        return
    a, b = (args.a or ROOT).resolve(), (args.b or ROOT).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        logs = Path(tmp)
        sides = {
            "A": _side(a, _env(args.env_a), go, args, logs / "a.log"),
            "B": _side(b, _env(args.env_b), go, args, logs / "b.log"),
        }
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            for name, proc in sides.items():
                _read_until_ready(name, proc, deadline)
            go.touch()
            results = {name: _results(proc) for name, proc in sides.items()}
        except BaseException:
            for proc in sides.values():
                proc.terminate()
            for name in sides:
                print(
                    f"--- side {name} log (last lines)\n"
                    + "\n".join((logs / f"{name.lower()}.log").read_text().splitlines()[-20:]),
                    file=sys.stderr,
                )
            raise
    print(f"A: {a} {' '.join(args.env_a)}\nB: {b} {' '.join(args.env_b)}")
    print("\n".join(summary(results["A"], results["B"])))


if __name__ == "__main__":
    main()
