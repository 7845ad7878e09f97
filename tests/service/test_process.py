"""`python -m signing_service` as a real process: starts with defaults, refuses bad configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from devstack import processes


def test_process_starts_and_serves(tmp_path: Path) -> None:
    ports = processes.Ports.free()
    env = processes.stack_env(ports, {"SIGNING_VAR_DIR": str(tmp_path), "APP_ENV": "development"})
    for key in ("DATABASE_URL", "OUTBOX_PATH"):
        env.pop(key, None)
    proc = processes.signing_service(ports, env, tmp_path / "log")
    proc.start()
    try:
        proc.wait_healthy(60)
        req = urllib.request.Request(
            f"http://127.0.0.1:{ports.signing}/v1/requests/PC05TK0000123",
            headers={"Authorization": f"Bearer {env['SIGNING_SERVICE_TOKEN']}"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - http to our own process
            assert json.load(r)["current_step"]["key"] == "contract_signing"
        assert (tmp_path / "signing.db").exists()
    finally:
        proc.stop()


def test_production_refuses_development_defaults(tmp_path: Path) -> None:
    env = processes.stack_env(
        processes.Ports.free(), {"SIGNING_VAR_DIR": str(tmp_path), "APP_ENV": "production"}
    )
    env.pop("SIGNING_SERVICE_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "signing_service", "--port", "1"],
        env=env,
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "configuration error" in result.stderr and "SIGNING_SERVICE_TOKEN" in result.stderr
