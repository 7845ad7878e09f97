"""Fixtures of the agent desk tests: a desk app on a private database, accounts, logged-in clients."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from agent_desk import accounts, db
from agent_desk.accounts import Agent
from agent_desk.app import create_app
from agent_desk.config import ROOT, Settings
from agent_desk.desk import Desk
from agent_desk.keys import DESK
from devstack import processes
from tests.conftest import POSTGRES_URL
from tests.desk.rasa_env import RasaEnv

PASSWORD = "mat-khau-rat-dai-123"
CSRF_RE = re.compile(r'name="csrf[_-]token" (?:value|content)="([0-9a-f]+)"')


def desk_settings(tmp_path: Path, **overrides: Any) -> Settings:
    env = {
        "DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
        "RASA_EVENTS_DB": str(tmp_path / "no-rasa-events.db"),
        "RASA_URL": "http://127.0.0.1:9",  # nothing listens: tests that need Rasa override this
        "SIGNING_SERVICE_URL": "http://127.0.0.1:9",
        "DESK_DOMAIN_PATH": str(ROOT / "domain.yml"),
        "DESK_SWEEP_INTERVAL": "0.2",
        "DESK_BROKER_POLL_INTERVAL": "0.1",
        "BOT_FAILURES_URL": f"sqlite:///{tmp_path / 'bot_failures.db'}",  # never the repository's var/
    }
    env.update({k: str(v) for k, v in overrides.pop("env", {}).items()})
    return Settings.from_env(env, **overrides)


async def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the CSRF token of the logged-in session."""
    page = await client.get("/login")
    token = CSRF_RE.search(await page.text())
    assert token, "login form has no CSRF token"
    resp = await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return await csrf_of(client, "/")


async def csrf_of(client: TestClient, path: str) -> str:
    page = await client.get(path)
    match = CSRF_RE.search(await page.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


DeskFactory = Callable[..., Awaitable[TestClient]]
REMOTE_HEADER = "X-Test-Remote"


@web.middleware
async def _remote_from_header(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    remote = request.headers.get(REMOTE_HEADER)
    return await handler(request.clone(remote=remote) if remote else request)


@pytest.fixture
async def desk_factory(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> DeskFactory:
    """Start a desk app (background tasks on by default) and return a test client for it."""
    apps: list[web.Application] = []

    async def make(
        settings: Settings | None = None, background: bool = True, remote_header: bool = False
    ) -> TestClient:
        app = create_app(settings or desk_settings(tmp_path), background=background)
        if remote_header:
            # Outermost: the client address is the one the test names (attacker vs agent).
            app.middlewares.insert(0, _remote_from_header)
        apps.append(app)
        return await aiohttp_client(app)

    return make


async def add_account(
    client: TestClient, username: str, role: str = "agent", name: str | None = None
) -> None:
    engine = client.app[DESK].engine if DESK in client.app else None
    assert engine is not None
    await accounts.create(engine, username, PASSWORD, role, name or username.capitalize())


async def wait_for(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 15, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def make_agent(desk: Desk, username: str, role: str = "agent", online: bool = True) -> Agent:
    agent = await accounts.create(desk.engine, username, PASSWORD, role, username.capitalize())
    if online:
        await go_online(desk, agent)
    return agent


async def go_online(desk: Desk, agent: Agent) -> None:
    """A live session, as a login makes (no browser needed for the assignment logic)."""
    now = time.time()
    async with desk.engine.begin() as conn:
        await conn.execute(
            db.sessions.insert().values(
                token_hash=secrets.token_hex(32), agent_id=agent.id, created_at=now, expires_at=now + 600
            )
        )


async def queue(desk: Desk, sender: str | None = None) -> int:
    """A customer asks for a human (the events the bot records), as the broker delivers them."""
    sender = sender or f"zalo-{uuid.uuid4().hex[:10]}"
    ts = time.time()
    for event in (
        {"event": "user", "timestamp": ts, "text": "gặp nhân viên", "input_channel": "zalo"},
        {"event": "action", "timestamp": ts + 0.01, "name": "action_request_handoff"},
        {"event": "slot", "timestamp": ts + 0.02, "name": "handoff_requested", "value": True},
    ):
        await desk.ingest({"sender_id": sender, **event})
    handoff = next(h for h in await desk.open_handoffs() if h.sender_id == sender)
    return handoff.id


@pytest.fixture
async def postgres_url() -> Any:
    """A fresh PostgreSQL database for one test, dropped afterwards (ask for it before the desks that
    use it: it must outlive them)."""
    name = f"desk_test_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL.replace("postgresql://", "postgres://"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def rasa_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaEnv]:
    if os.environ.get("DESK_TEST_RASA_URL"):  # an already running Rasa (development loop)
        yield RasaEnv(
            os.environ["DESK_TEST_RASA_URL"],
            os.environ.get("RASA_AUTH_TOKEN", processes.DEV_DEFAULTS["RASA_AUTH_TOKEN"]),
            Path(os.environ["DESK_TEST_RASA_EVENTS_DB"]),
            "http://127.0.0.1:9",
            "-",
        )
        return
    model = os.environ.get("DESK_TEST_RASA_MODEL")
    if not model:
        stack = request.getfixturevalue("rasa_stack")
        yield RasaEnv(
            stack.rasa_url,
            stack.rasa_token,
            Path(stack.env["RASA_EVENTS_DB"]),
            stack.signing_url,
            stack.token,
        )
        return
    root = tmp_path_factory.mktemp("desk-rasa")
    ports = processes.Ports.free()
    env = processes.stack_env(
        ports, {"RASA_EVENTS_DB": str(root / "rasa_events.db"), "RASA_URL": f"http://127.0.0.1:{ports.rasa}"}
    )
    proc = processes.rasa_server(ports, env, root / "log", Path(model), workers=1)
    proc.start()
    try:
        proc.wait_healthy(600)  # a loaded 2-core machine can take minutes to load a model
        yield RasaEnv(
            env["RASA_URL"],
            env["RASA_AUTH_TOKEN"],
            root / "rasa_events.db",
            env["SIGNING_SERVICE_URL"],
            env["SIGNING_SERVICE_TOKEN"],
        )
    finally:
        proc.stop()


__all__ = [
    "PASSWORD",
    "REMOTE_HEADER",
    "add_account",
    "csrf_of",
    "db",
    "desk_settings",
    "go_online",
    "login",
    "make_agent",
    "postgres_url",
    "queue",
    "wait_for",
]
