"""Fixtures for action tests: a private signing service and tracker builders.

The action tests call the actions in-process (as the action server would) against a real signing
service started just for them, so they can sign documents without disturbing other tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker

from bot.actions import desk_api, signing_api
from devstack import processes
from tests import demo_data

ROOT = processes.ROOT


class Service:
    def __init__(self, root: Path) -> None:
        self.ports = processes.Ports.free()
        self.root = root
        self.outbox = root / "outbox" / "messages.jsonl"
        self.db = root / "signing.db"
        self.env = processes.stack_env(
            self.ports,
            {
                "DATABASE_URL": f"sqlite:///{self.db}",
                "OUTBOX_PATH": str(self.outbox),
                "SIGNING_VAR_DIR": str(root),
                "SIGNING_SERVICE_URL": f"http://127.0.0.1:{self.ports.signing}",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports.signing}",
                # One test sender plays the customer of every demo request.
                "OTP_SESSIONS_PER_CHAT_USER_PER_DAY": "1000",
                "OTP_WRONG_PER_CHAT_USER_PER_DAY": "1000",
            },
        )
        self.url = self.env["SIGNING_SERVICE_URL"]
        self.token = self.env["SIGNING_SERVICE_TOKEN"]

    def last_otp(self, to: str | None = None) -> str:
        """The code of the latest SMS/e-mail in the outbox (optionally for one destination)."""
        code = demo_data.last_code(self.outbox, to)
        assert code, "no OTP in the outbox"
        return code

    def codes_awaiting(self, documents: int) -> list[str]:
        """Generated demo requests with exactly `documents` drafts awaiting signature."""
        return demo_data.codes_awaiting(self.db, documents)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("actions-signing"))
    proc = processes.signing_service(svc.ports, svc.env, svc.root / "log")
    proc.start()
    try:
        proc.wait_healthy(120)
        yield svc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
async def api_env(service: Service) -> AsyncIterator[None]:
    """Point the actions' client at the private service; close its session after each test."""
    saved = {k: os.environ.get(k) for k in ("SIGNING_SERVICE_URL", "SIGNING_SERVICE_TOKEN", "DESK_URL")}
    os.environ["SIGNING_SERVICE_URL"] = service.url
    os.environ["SIGNING_SERVICE_TOKEN"] = service.token
    os.environ["DESK_URL"] = "http://127.0.0.1:9"  # no desk unless a test starts one
    signing_api.reset_api()
    desk_api.reset_desk_api()
    yield
    await signing_api.get_api().close()
    signing_api.reset_api()
    desk_api.reset_desk_api()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


def make_tracker(
    slots: dict[str, Any] | None = None,
    text: str = "",
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    sender_id: str = "test-actions",
    active_loop: str | None = None,
    requested_slot: str | None = None,
    input_channel: str = "rest",
    metadata: dict[str, Any] | None = None,
) -> Tracker:
    """A tracker as the action server receives it: slots, the latest message, one user event."""
    all_slots = {"requested_slot": requested_slot, **(slots or {})}
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "metadata": metadata or {},
    }
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest, "input_channel": input_channel},
    ]
    return Tracker(
        sender_id,
        all_slots,
        latest,
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def responses(dispatcher: Any) -> list[str]:
    return [m.get("response") for m in dispatcher.messages]


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def verify_sender(service: Service, code: str, sender: str = "test-actions", channel: str = "rest") -> None:
    """Make `sender` verified for `code` the way a customer does: a code to the registered phone."""
    import urllib.request

    headers = {
        "Authorization": f"Bearer {service.token}",
        "X-Chat-Channel": channel,
        "X-Chat-User": sender,
        "Content-Type": "application/json",
    }

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{service.url}{path}"
        req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (the test's own service)
            return dict(json.loads(resp.read()))

    challenge = post("/v1/verifications", {"request_code": code, "channel": "sms"})["challenge_id"]
    post(f"/v1/verifications/{challenge}/verify", {"otp": service.last_otp()})


@pytest.fixture(scope="session")
def verified_sender(service: Service) -> None:
    """The default test sender verified for every request with documents (the action tests of
    documents, amendments and signing play the real customer; tests/actions/test_verification.py
    plays the stranger)."""
    with sqlite3.connect(service.db) as conn:
        rows = conn.execute("select code from requests where code like 'PC0%' order by code")
        codes = [r[0] for r in rows]
    for code in codes:
        verify_sender(service, code)
