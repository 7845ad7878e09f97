"""Where does a Rasa turn spend its time? Profile a real Rasa server with pyinstrument.

    .venv/bin/python -m bench.profile_rasa                    # this assistant, 120-turn conversation
    .venv/bin/python -m bench.profile_rasa --endpoints var/scaled/endpoints.yml --turns 200

Starts the signing service and the action server as usual, and Rasa *inside* this wrapper
(`python -m bench.profile_rasa --serve OUT -- <rasa run args>`), whose sampling profiler runs
in the server's main thread (Sanic serves there with one worker). One long conversation is played;
when the server stops, the profile (pyinstrument's text tree) is written and its top is printed.
py-spy is not installed here; pyinstrument is in the venv.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path


def serve(out: Path, rasa_args: list[str]) -> None:
    """Run `rasa <rasa_args>` in this process; SIGUSR1 starts the profiler, the next one writes
    the report (so model loading is not in the profile)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")

    def toggle(*_: object) -> None:
        if not profiler.is_running:
            profiler.start()
            return
        profiler.stop()
        session = profiler.last_session
        if session is not None:
            session.save(str(out.with_suffix(".pyisession")))  # `pyinstrument --load` re-renders it
        # show_all: Rasa's own frames are what we want to see (library frames hidden by default).
        out.write_text(profiler.output_text(unicode=True, color=False, show_all=True))

    signal.signal(signal.SIGUSR1, toggle)
    # As deploy/rasa_main.py starts Rasa: the same checks and patches, else the profile is of a Rasa
    # that does not run anywhere (stock jsonschema checks were 70 % of it before this line).
    from deploy.rasa_main import prepare

    prepare(os.environ, rasa_args)
    sys.argv = ["rasa", *rasa_args]
    from rasa.__main__ import main as rasa_main

    rasa_main()


def drive(turns: int, endpoints: str | None) -> Path:
    from bench import loadgen
    from bench.bench_rasa import ASSISTANT_SCRIPT
    from devstack import model, processes

    tmp = Path(tempfile.mkdtemp(prefix="cskh-profile-"))
    out = tmp / "profile.txt"
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports,
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'signing.db'}",
            "OUTBOX_PATH": str(tmp / "outbox.jsonl"),
            "SIGNING_VAR_DIR": str(tmp),
            "RASA_EVENTS_DB": str(tmp / "rasa_events.db"),
            "RASA_TELEMETRY_ENABLED": "false",
        },
    )
    rasa = processes.rasa_server(
        ports,
        env,
        tmp / "log",
        model.ensure_model(),
        workers=1,  # the profiler samples one process
        **({"endpoints": endpoints} if endpoints else {}),
    )
    rasa.cmd = [sys.executable, "-m", "bench.profile_rasa", "--serve", str(out), "--", *rasa.cmd[3:]]
    procs = [
        processes.signing_service(ports, env, tmp / "log"),
        processes.action_server(ports, env, tmp / "log"),
        rasa,
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_healthy(600)
        url = f"http://127.0.0.1:{ports.rasa}/webhooks/rest/webhook"
        asyncio.run(loadgen.long_conversation(url, ASSISTANT_SCRIPT, 3))  # warm-up
        assert rasa.popen
        os.kill(rasa.popen.pid, signal.SIGUSR1)
        lat = asyncio.run(loadgen.long_conversation(url, ASSISTANT_SCRIPT, turns))
        os.kill(rasa.popen.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 120
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        print(
            f">> {turns} turns: turn 5 {loadgen.window_median(lat, 5):.0f} ms, "
            f"turn {turns - 5} {loadgen.window_median(lat, turns - 5):.0f} ms",
            flush=True,
        )
    finally:
        for p in reversed(procs):
            p.stop(timeout=60)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        serve(Path(argv[1]), argv[3:] if argv[2:3] == ["--"] else argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=120)
    parser.add_argument("--endpoints", help="endpoints file for Rasa (default: endpoints.yml)")
    parser.add_argument("--lines", type=int, default=80, help="lines of the profile to print")
    args = parser.parse_args(argv)
    out = drive(args.turns, args.endpoints)
    if not out.exists():
        print(f"!! no profile written ({out})", file=sys.stderr)
        return 1
    print("\n".join(out.read_text().splitlines()[: args.lines]))
    print(f"\nfull profile: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
