"""What the running stack exposes, checked on the live processes devstack starts (`make run`'s).

- every server listens on loopback only (BIND_HOST's default), read from the kernel's socket table;
- Rasa answers no cross-origin request (no `--cors "*"`);
- Rasa's telemetry (Segment) and crash reports (Sentry) stay off, and its log shows no attempt;
- Rasa still reaches the action server, which now requires its token.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import processes
from tests.conftest import Stack

ROOT = processes.ROOT


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Local addresses of the TCP sockets listening on `port` (Linux /proc/net/tcp, tcp6)."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            addr_hex, port_hex = fields[1].split(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            # The kernel prints each 32-bit word in host (little-endian) order.
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(ipaddress.ip_address(packed))
    return found


def assert_loopback_only(name: str, port: int) -> None:
    addresses = listening_addresses(port)
    assert addresses, f"{name}: nothing listens on port {port}"
    assert all(a.is_loopback for a in addresses), f"{name} listens on {sorted(map(str, addresses))}:{port}"


@pytest.fixture(scope="module")
def desk(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Proc]:
    root = tmp_path_factory.mktemp("closed-doors-desk")
    env = {**stack.env, "DESK_DATABASE_URL": f"sqlite:///{root / 'desk.db'}"}
    proc = processes.agent_desk(stack.ports, env, root / "log")
    proc.start()
    try:
        proc.wait_healthy(120)
        yield proc
    finally:
        proc.stop()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_signing_service_action_server_and_desk_listen_on_loopback_only(
    stack: Stack, desk: processes.Proc
) -> None:
    assert_loopback_only("signing service", stack.ports.signing)
    assert_loopback_only("action server", stack.ports.actions)
    assert_loopback_only("agent desk", stack.ports.desk)


def test_rasa_crash_reports_and_telemetry_stay_off_in_the_devstack_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `rasa run` does first (rasa/__main__.py), in a fresh $HOME (telemetry on by default)."""
    monkeypatch.delenv("RASA_TELEMETRY_ENABLED", raising=False)
    probe = (
        "import json, rasa.telemetry as t, sentry_sdk\n"
        "t.initialize_telemetry(); t.initialize_error_reporting()\n"
        "print(json.dumps({'sentry': sentry_sdk.Hub.current.client is not None,"
        " 'telemetry': t.is_telemetry_enabled()}))\n"
    )

    def run(env: dict[str, str]) -> dict[str, bool]:
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    env = processes.stack_env(processes.Ports.free(), {"HOME": str(tmp_path / "home")})
    assert run(env) == {"sentry": False, "telemetry": False}
    # The probe does see it: the same environment without the setting initialises Sentry.
    without = {k: v for k, v in env.items() if k != "RASA_TELEMETRY_ENABLED"}
    assert run({**without, "HOME": str(tmp_path / "home2")}) == {"sentry": True, "telemetry": True}


@pytest.mark.e2e
@pytest.mark.slow
def test_rasa_listens_on_loopback_refuses_cors_reaches_its_actions_and_reports_nothing(
    rasa_stack: Stack, sender_id: str
) -> None:
    if Path("/proc/net/tcp").exists():
        assert_loopback_only("rasa", rasa_stack.ports.rasa)

    # A browser on another origin gets no CORS permission (was: Access-Control-Allow-Origin for any).
    preflight = urllib.request.Request(  # noqa: S310 (the test stack's own URL)
        f"{rasa_stack.rasa_url}/webhooks/rest/webhook",
        method="OPTIONS",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    try:
        with urllib.request.urlopen(preflight, timeout=10) as r:  # noqa: S310
            allowed = r.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as e:
        allowed = e.headers.get("Access-Control-Allow-Origin")
    assert allowed is None

    # Rasa -> action server with the token (endpoints.yml): a custom action answers.
    message = urllib.request.Request(  # noqa: S310
        f"{rasa_stack.rasa_url}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender_id, "message": "cho tôi gặp nhân viên"}).encode(),
        headers={"Content-Type": "application/json", "Origin": "https://evil.example"},
    )
    with urllib.request.urlopen(message, timeout=60) as r:  # noqa: S310
        assert r.headers.get("Access-Control-Allow-Origin") is None
        answer = json.loads(r.read())
    assert "chờ trong giây lát" in "\n".join(m.get("text", "") for m in answer)  # action_request_handoff

    log = (rasa_stack.root / "log" / "rasa.log").read_text(encoding="utf-8", errors="replace").lower()
    for word in ("sentry", "segment.io", "telemetry"):
        assert word not in log, f"Rasa's log mentions {word!r}"
    assert "failed to execute custom action" not in log
