"""Shared fixtures: the real processes of the assistant, started once per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import model, processes
from tests import ports

ROOT = processes.ROOT
if os.environ.get(ports.ENV):
    # Before any test module imports free_port by name: every server of this session gets a port of
    # the range scripts/test_groups.py reserved for this pytest process.
    try:
        processes.free_port = ports.range_allocator(*ports.parse(os.environ[ports.ENV]))
    except ports.PortRangeError as e:
        raise pytest.UsageError(str(e)) from None
# A busy 2-core machine can take minutes to import Rasa and load the model.
RASA_START_TIMEOUT = float(os.environ.get("RASA_START_TIMEOUT", "900"))
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private `var/` for the session's servers (database, outbox, keys, logs)."""
    return tmp_path_factory.mktemp("stack")


class Stack:
    """Ports, environment and processes of one running assistant."""

    def __init__(self, root: Path) -> None:
        self.ports = processes.Ports.free()
        self.root = root
        self.outbox = root / "outbox" / "messages.jsonl"
        self.env = processes.stack_env(
            self.ports,
            {
                "DATABASE_URL": f"sqlite:///{root / 'signing.db'}",
                "OUTBOX_PATH": str(self.outbox),
                "SIGNING_VAR_DIR": str(root),
                "SIGNING_SERVICE_URL": f"http://127.0.0.1:{self.ports.signing}",
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports.signing}",
                "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{self.ports.actions}/webhook",
                "RASA_URL": f"http://127.0.0.1:{self.ports.rasa}",
                "RASA_EVENTS_DB": str(root / "rasa_events.db"),
                # Many conversations of the suite sign and verify on the same demo requests.
                "OTP_MAX_SENDS_PER_HOUR": "100",
                "OTP_MAX_SENDS_PER_DAY": "500",
            },
        )
        self.procs: dict[str, processes.Proc] = {}

    def start(self, proc: processes.Proc, timeout: float = 300) -> None:
        self.procs[proc.name] = proc
        proc.start()
        proc.wait_healthy(timeout)

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.rasa}"

    @property
    def signing_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.signing}"

    @property
    def token(self) -> str:
        return self.env["SIGNING_SERVICE_TOKEN"]

    @property
    def rasa_token(self) -> str:
        return self.env["RASA_AUTH_TOKEN"]


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model for the current data; trained once (and cached by data hash) if missing."""
    return model.ensure_model()


@pytest.fixture(scope="session")
def stack(stack_dir: Path) -> Iterator[Stack]:
    """Signing service + action server (no Rasa): enough for action and service tests."""
    s = Stack(stack_dir)
    log_dir = stack_dir / "log"
    try:
        s.start(processes.signing_service(s.ports, s.env, log_dir))
        s.start(processes.action_server(s.ports, s.env, log_dir))
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def rasa_stack(stack: Stack, trained_model: Path) -> Stack:
    """The full assistant: signing service, action server and a real Rasa server."""
    if "rasa" not in stack.procs:
        # One Sanic worker, in one process: two are three processes (Sanic's main one and the
        # workers), each importing Rasa, and the conversations need no second worker. What several
        # workers share (locks, model activation, a worker dying) is tested with workers=2.
        stack.start(
            processes.rasa_server(stack.ports, stack.env, stack.root / "log", trained_model, workers=1),
            RASA_START_TIMEOUT,
        )
    return stack


@pytest.fixture
def sender_id() -> str:
    """A fresh conversation id per test."""
    return f"test-{uuid.uuid4().hex[:12]}"
