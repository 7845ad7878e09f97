"""bot/action_server.py: the action server answers Rasa only (ACTION_SERVER_TOKEN, a bearer header).

The live tests use the session's action server (tests/conftest.py `stack`), started the way
`make run` starts it (devstack/processes.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot import action_server
from devstack import processes
from tests.conftest import Stack

ROOT = processes.ROOT
RIGHT = processes.DEV_DEFAULTS["ACTION_SERVER_TOKEN"]
WRONG = "not-the-token-0123456789"


def call(
    stack: Stack, path: str, auth: str | None, body: dict[str, Any] | None = None, method: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 of the test stack)
        f"http://127.0.0.1:{stack.ports.actions}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    return status, json.loads(raw) if raw else None


def handoff_call() -> dict[str, Any]:
    """What Rasa posts to run `action_request_handoff` (needs no signing service)."""
    return {
        "next_action": "action_request_handoff",
        "sender_id": "test-action-auth",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "test-action-auth",
            "slots": {},
            "latest_message": {},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


@pytest.mark.parametrize(
    "auth",
    [None, f"Bearer {WRONG}", f"Bearer {RIGHT}x", f"Basic {RIGHT}", RIGHT, "Bearer ", f"Bearer {RIGHT[:-1]}"],
)
def test_an_action_call_without_the_right_token_is_refused(stack: Stack, auth: str | None) -> None:
    status, body = call(stack, "/webhook", auth, handoff_call())
    assert status == 401
    assert body["error"] == "unauthorized"


def test_an_action_call_with_the_token_runs_the_action(stack: Stack) -> None:
    status, body = call(stack, "/webhook", f"Bearer {RIGHT}", handoff_call())
    assert status == 200, body
    assert {"event": "slot", "name": "handoff_requested", "value": True} in [
        {k: e[k] for k in ("event", "name", "value")} for e in body["events"]
    ]
    assert body["responses"][0]["response"] == "utter_handoff_queued"


def test_every_path_but_health_needs_the_token(stack: Stack) -> None:
    assert call(stack, "/health", None)[0] == 200
    assert call(stack, "/actions", None)[0] == 401
    assert call(stack, "/actions", f"Bearer {WRONG}")[0] == 401
    status, names = call(stack, "/actions", f"Bearer {RIGHT}")
    assert status == 200 and {"name": "action_request_handoff"} in names
    # CORS preflights (answered by sanic_cors before any route) and unknown paths too.
    assert call(stack, "/webhook", None, method="OPTIONS")[0] == 401
    assert call(stack, "/anything", None)[0] == 401


def test_a_refusal_is_logged_without_the_presented_secret(stack: Stack) -> None:
    marker = "leaked-if-logged-7f3a9c"
    assert call(stack, "/webhook", f"Bearer {marker}", handoff_call())[0] == 401
    log = (stack.root / "log" / "action-server.log").read_text(encoding="utf-8", errors="replace")
    assert re.search(r"refused POST /webhook from 127\.0\.0\.1: wrong token", log), log[-2000:]
    assert marker not in log
    assert RIGHT not in log


def test_the_token_setting_refuses_its_development_default_in_production() -> None:
    assert action_server.ActionServerSettings.from_env({}).token == action_server.DEV_ACTION_TOKEN
    assert action_server.DEV_ACTION_TOKEN == processes.DEV_DEFAULTS["ACTION_SERVER_TOKEN"]
    with pytest.raises(action_server.ConfigError, match="APP_ENV=production: set ACTION_SERVER_TOKEN"):
        action_server.ActionServerSettings.from_env({"APP_ENV": "production"})
    with pytest.raises(action_server.ConfigError, match="APP_ENV=production: set ACTION_SERVER_TOKEN"):
        action_server.ActionServerSettings.from_env({"APP_ENV": "production", "ACTION_SERVER_TOKEN": RIGHT})
    with pytest.raises(action_server.ConfigError, match="must not be empty"):
        action_server.ActionServerSettings.from_env({"ACTION_SERVER_TOKEN": " "})
    prod = {"APP_ENV": "production", "ACTION_SERVER_TOKEN": "a-real-secret-0123456789"}
    assert action_server.ActionServerSettings.from_env(prod).token == "a-real-secret-0123456789"


def test_the_launcher_does_not_start_in_production_on_the_development_token(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "APP_ENV": "production"}
    env.pop("ACTION_SERVER_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot.action_server", "--port", str(processes.free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "configuration error: APP_ENV=production: set ACTION_SERVER_TOKEN" in done.stderr


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "deploy/endpoints.scaled.yml"])
def test_rasa_sends_the_token_as_a_header_on_every_action_call(
    endpoints: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import read_endpoint_config

    path = ROOT / endpoints
    for name in set(re.findall(r"\$\{(\w+)\}", path.read_text(encoding="utf-8"))):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("ACTION_SERVER_TOKEN", "s3cret-from-env")
    cfg = read_endpoint_config(str(path), "action_endpoint")
    assert cfg is not None
    assert cfg.headers == {"Authorization": "Bearer s3cret-from-env"}
    # not as a query parameter: those end up in access logs
    assert cfg.token is None and cfg.combine_parameters() == {}
    # Unset, Rasa refuses the file instead of calling the action server without it.
    monkeypatch.delenv("ACTION_SERVER_TOKEN")
    with pytest.raises(RasaException, match="ACTION_SERVER_TOKEN"):
        read_endpoint_config(str(path), "action_endpoint")
