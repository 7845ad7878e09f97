"""`make shell`: talk to the bot in the terminal.

Trains the model if needed, starts the signing service and the action server (logs under
var/log/), then runs `rasa shell` in the foreground. Ctrl-C (or /stop in the shell) stops all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from devstack import model, processes


def main() -> int:
    model_file = model.ensure_model()
    ports = processes.Ports()
    env = processes.stack_env(ports)
    log_dir = processes.ROOT / "var" / "log"
    procs = [processes.signing_service(ports, env, log_dir), processes.action_server(ports, env, log_dir)]
    try:
        for p in procs:
            print(f">> starting {p.name} (log: {p.log_path})", flush=True)
            p.start()
        for p in procs:
            p.wait_healthy(timeout=180)
        print(">> type a message (e.g. 'tra cứu hồ sơ PC05TK0000123'); /stop or Ctrl-C to quit", flush=True)
        cmd = [
            sys.executable, "-m", "rasa", "shell", "--model", str(model_file),
            "--endpoints", "endpoints.yml", "--port", str(processes.free_port()),
        ]  # fmt: skip
        shell = subprocess.Popen(cmd, cwd=processes.ROOT, env=env)
        try:
            return shell.wait()
        except KeyboardInterrupt:
            # The shell got the same Ctrl-C; give it a moment to leave, then make sure it did.
            try:
                shell.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(shell.pid, signal.SIGTERM)
                shell.wait()
            return 0
    finally:
        print("\n>> stopping", flush=True)
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    sys.exit(main())
