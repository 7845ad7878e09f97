"""One scaled stack (devstack/scaled.py, the `make run-scaled` topology) for the fault tests.

It uses its own databases, RabbitMQ queue/exchange and Redis lock prefix, and a private
redis-server on a free port (so the Redis-down test never touches the machine's Redis).
Its Telegram channel talks to a fake Telegram Bot API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import model, processes
from devstack.scaled import ScaledConfig, ScaledStack, require_nginx
from tests.connectors.conftest import TG_SECRET, TG_TOKEN
from tests.connectors.fakes import FakeTelegramApi

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    """A throw-away redis-server; `kill()` is a crash, `start()` brings it back on the same port."""

    def __init__(self, root: Path) -> None:
        self.port = processes.free_port()
        self.root = root
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("private redis-server did not start")

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


class Scaled:
    def __init__(self, stack: ScaledStack, redis: PrivateRedis, telegram: FakeTelegramApi) -> None:
        self.stack = stack
        self.redis = redis
        self.telegram = telegram
        p = stack.cfg.ports
        self.public = f"http://127.0.0.1:{p.public}"
        self.rasa_api = f"http://127.0.0.1:{p.rasa_api}"
        self.signing_api = f"http://127.0.0.1:{p.signing_api}"
        self.rasa_token = stack.env["RASA_AUTH_TOKEN"]
        self.signing_token = stack.env["SIGNING_SERVICE_TOKEN"]

    def say(self, sender: str, text: str, timeout: float = 60) -> tuple[int, Any]:
        return http_json(
            "POST",
            f"{self.rasa_api}/webhooks/rest/webhook",
            {"sender": sender, "message": text},
            timeout=timeout,
        )

    def tracker(self, sender: str) -> dict[str, Any]:
        # Right after a fault nginx may have marked every Rasa instance failed for fail_timeout (5 s):
        # the killed one, and the survivor when a request queued behind a dead instance's lock ran
        # into proxy_read_timeout. Reading is idempotent, so wait that out.
        deadline = time.monotonic() + 20
        while True:
            status, body = http_json(
                "GET", f"{self.rasa_api}/conversations/{sender}/tracker?token={self.rasa_token}"
            )
            if status not in (502, 503, 504) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert status == 200, body
        return body

    def user_texts(self, sender: str) -> list[str]:
        return [e.get("text") for e in self.tracker(sender)["events"] if e["event"] == "user"]

    def log(self, name: str) -> str:
        path = self.stack.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def http_json(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 60
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 (loopback test servers)
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def texts(reply: Any) -> str:
    if not isinstance(reply, list):
        return ""
    return " ".join(m.get("text", "") for m in reply if isinstance(m, dict))


@pytest.fixture(scope="package")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scaled]:
    require_nginx()
    root = tmp_path_factory.mktemp("scaled")
    redis = PrivateRedis(root / "redis")
    redis.start()
    telegram = FakeTelegramApi(TG_TOKEN).start()
    cfg = ScaledConfig.for_tests(
        root,
        with_desk=False,
        redis_port=redis.port,
        lock_db=0,
        extra_env={
            "TELEGRAM_BOT_TOKEN": TG_TOKEN,
            "TELEGRAM_SECRET_TOKEN": TG_SECRET,
            "TELEGRAM_API_BASE_URL": telegram.url,
            "CHANNEL_FAILURES_PATH": str(root / "channel_failures.jsonl"),
        },
    )
    stack = ScaledStack(cfg, _model())
    t0 = time.monotonic()
    try:
        stack.start()
        print(f"\n[faults] scaled stack up in {time.monotonic() - t0:.0f} s")
        yield Scaled(stack, redis, telegram)
    finally:
        stack.stop()
        stack.drop_databases()
        telegram.stop()
        redis.kill()


def _model() -> Path:
    """CSKH_MODEL=<file> runs against a given model (e.g. while the current data is training)."""
    given = os.environ.get("CSKH_MODEL")
    return Path(given) if given else model.ensure_model()
