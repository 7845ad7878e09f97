"""`make run`: train if needed, then run every process of the assistant until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from devstack import model, processes


def build_procs(
    ports: processes.Ports, env: dict[str, str], log_dir: Path, model_file: Path
) -> list[processes.Proc]:
    """Every process `make run` starts, in start order."""
    keys = processes.ROOT / "var" / "keys" / "tsa"
    own_tsa = not env.get("TSA_URL", "").strip()
    env = processes.with_dev_tsa(ports, env, keys)
    procs = [processes.tsa(ports, env, log_dir, keys)] if own_tsa else []
    procs += [
        processes.signing_service(ports, env, log_dir),
        processes.action_server(ports, env, log_dir),
        processes.rasa_server(ports, env, log_dir, model_file),
        processes.notifier(ports, env, log_dir),
    ]
    if (processes.ROOT / "agent_desk" / "__main__.py").exists():
        procs.append(processes.agent_desk(ports, env, log_dir))
    return procs


def main() -> int:
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
            # Rasa loads TensorFlow and the model: about a minute idle, several on a busy machine.
            p.wait_healthy(timeout=900, progress_every=30)
            print(f">> {p.name} is up: {p.health_url}", flush=True)
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
