"""`make run`: train if needed, then run every process of the assistant until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from devstack import model, processes, rasa_ready


def build_procs(
    ports: processes.Ports, env: dict[str, str], log_dir: Path, model_file: Path
) -> list[processes.Proc]:
    """Every process `make run` starts, in start order.

    Rasa first: loading the model is by far the longest start (it calls the action server only
    when a message comes), so the others start while it loads instead of before it.
    """
    keys = processes.ROOT / "var" / "keys" / "tsa"
    own_tsa = not env.get("TSA_URL", "").strip()
    env = processes.with_dev_tsa(ports, env, keys)
    procs = [processes.rasa_server(ports, env, log_dir, model_file)]
    procs += [processes.tsa(ports, env, log_dir, keys)] if own_tsa else []
    procs += [
        processes.signing_service(ports, env, log_dir),
        processes.action_server(ports, env, log_dir),
        processes.notifier(ports, env, log_dir),
    ]
    if (processes.ROOT / "agent_desk" / "__main__.py").exists():
        procs.append(processes.agent_desk(ports, env, log_dir))
    return procs


def report_ready(rasa: processes.Proc, rest_url: str, env: dict[str, str], started: float) -> None:
    """Print how long after `make run` the assistant first answered through the REST channel."""
    answered = rasa_ready.wait_for_answer(
        rest_url, env, timeout=120, alive=lambda: rasa.popen is not None and rasa.popen.poll() is None
    )
    if answered is None:
        print(f"!! the REST channel gave no answer to a test message; see {rasa.log_path}", file=sys.stderr)
        return
    took = time.monotonic() - started
    print(f">> Trợ lý sẵn sàng sau {took:.0f} s / assistant ready after {took:.0f} s", flush=True)


def main() -> int:
    started = time.monotonic()  # "ready after N s" counts from here (model check included)
    ports = processes.Ports()
    try:
        env = processes.stack_env(ports)  # checks BIND_HOST and RASA_CORS_ORIGINS
    except processes.ConfigError as e:
        print(f"!! configuration error: {e}", file=sys.stderr)
        return 2
    model_file = model.ensure_model()
    retired = processes.retire_broker_events_db(Path(env["RASA_EVENTS_DB"]))
    if retired:
        print(f">> {env['RASA_EVENTS_DB']} came from the old event broker; kept as {retired}", flush=True)
    log_dir = processes.ROOT / "var" / "log"
    procs = build_procs(ports, env, log_dir, model_file)
    host = processes.client_host(env)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for p in procs:
            print(f">> starting {p.name} (log: {p.log_path})", flush=True)
            p.start()
            if p.name == "tsa":  # the signing service timestamps the demo documents as it starts
                p.wait_healthy(timeout=120)
        for p in procs:
            # Rasa loads TensorFlow and the model: 12-16 s idle with deploy/rasa_fast_start.py, about a
            # minute without it, several on a busy machine (bench/README.md "Start-up and memory").
            p.wait_healthy(timeout=900, progress_every=30)
            print(f">> {p.name} is up: {p.health_url}", flush=True)
        rasa = next(p for p in procs if p.name == "rasa")
        report_ready(rasa, f"http://{host}:{ports.rasa}/webhooks/rest/webhook", env, started)
        print(
            f"\nThe assistant is running (listening on {env['BIND_HOST']}; BIND_HOST to change).\n"
            f"  REST channel : POST http://{host}:{ports.rasa}/webhooks/rest/webhook\n"
            f"  signing API  : http://{host}:{ports.signing}/v1 (Bearer {env['SIGNING_SERVICE_TOKEN']})\n"
            f"  agent desk   : http://{host}:{ports.desk}/  (web chat demo: /demo)\n"
            f"  notifier     : http://{host}:{ports.notifier}/health (notices to subscribed customers)\n"
            f"  timestamps   : {env.get('TSA_URL') or 'development TSA'} (PAdES B-T/B-LT), check page http://{host}:{ports.signing}/verify\n"
            f"  OTP outbox   : {Path(env.get('OUTBOX_PATH', 'var/outbox/messages.jsonl'))}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while not stopping:
            for p in procs:
                if p.popen and p.popen.poll() is not None:
                    print(f"!! {p.name} exited with {p.popen.returncode}; see {p.log_path}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("\n>> stopping", flush=True)
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
