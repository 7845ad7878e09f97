"""One request id from the channel to the signing service, followed in the real processes' logs.

The session's stack (tests/conftest.py: signing service + action server, started as `make run` starts
them) gets what Rasa posts for a customer message whose channel set `request_id` in its metadata; the
action calls the signing service; both processes' log files then hold that id.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import request_id
from devstack import processes
from tests.conftest import Stack

ROOT = processes.ROOT
TOKEN = processes.DEV_DEFAULTS["ACTION_SERVER_TOKEN"]


def find_request_call(rid: str, sender: str) -> dict[str, Any]:
    """What Rasa posts to run `action_find_request` for "PC05TK0000123" typed on Telegram."""
    return {
        "next_action": "action_find_request",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": sender,
            "slots": {"lookup_code": "PC05TK0000123"},
            "latest_message": {"text": "PC05TK0000123", "metadata": {request_id.METADATA_KEY: rid}},
            "latest_input_channel": "telegram",
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def post_action(stack: Stack, body: dict[str, Any]) -> tuple[int, Any]:
    req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 of the test stack)
        f"http://127.0.0.1:{stack.ports.actions}/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=20) as r:  # noqa: S310
        return r.status, json.loads(r.read())


def lines_with(path: Path, needle: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if needle in ln]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_one_message_has_one_id_in_the_action_server_and_the_signing_service(stack: Stack) -> None:
    rid = request_id.new_id()
    status, body = post_action(stack, find_request_call(rid, f"telegram:{rid}"))
    assert status == 200, body
    assert body["responses"], body  # the status of the request was shown: the service was called
    log_dir = stack.root / "log"
    assert lines_with(log_dir / "action-server.log", rid), "the action server did not log the id"
    access = lines_with(log_dir / "signing-service.log", rid)
    assert any("/v1/requests/" in ln for ln in access), "the signing service's access line lacks the id"
    assert not any("PC05TK0000123" in ln for ln in access)  # codes stay out of the logs


def metric_value(text: str, series: str) -> float:
    found = [ln for ln in text.splitlines() if ln.startswith(series + " ")]
    return float(found[0].split()[-1]) if found else 0.0


def scrape(stack: Stack) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.actions}/metrics", timeout=10) as r:  # noqa: S310
        return r.read().decode()


def test_the_action_server_counts_calls_and_fallbacks_on_its_metrics(stack: Stack) -> None:
    fallbacks = 'cskh_nlu_fallbacks_total{channel="telegram"}'
    before = scrape(stack)
    post_action(stack, find_request_call(request_id.new_id(), "telegram:metrics-test"))
    fallback = find_request_call(request_id.new_id(), "telegram:metrics-test")
    fallback["next_action"] = "action_nlu_fallback"
    assert post_action(stack, fallback)[0] == 200
    after = scrape(stack)
    calls = 'cskh_action_calls_total{status="200"}'
    assert metric_value(after, calls) >= metric_value(before, calls) + 2
    assert metric_value(after, fallbacks) == metric_value(before, fallbacks) + 1
