"""Signing-service fixtures: the real aiohttp app on SQLite and on PostgreSQL (own database per session)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.engine import make_url

from signing_service.clock import ManualClock
from signing_service.context import Context
from signing_service.http.app import create_app
from signing_service.http.keys import CTX
from signing_service.settings import Settings, load_settings
from tests import demo_data

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "test-signing-token-0123"


@pytest.fixture(scope="session")
def service_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One var dir per session: the dev CA is generated once and shared by every test."""
    return tmp_path_factory.mktemp("signing-var")


@contextlib.contextmanager
def new_pg_database(prefix: str) -> Iterator[str]:
    """The URL of a new, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield str(make_url(POSTGRES_URL).set(database=name))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own for this session."""
    with new_pg_database("test_signing") as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_settings(var: Path, backend: str, request: pytest.FixtureRequest, **env: str) -> Settings:
    url = f"sqlite:///{var / 'signing.db'}" if backend == "sqlite" else request.getfixturevalue("pg_database")
    base = {
        "APP_ENV": "test",
        "SIGNING_VAR_DIR": str(var),
        "DATABASE_URL": url,
        "OUTBOX_PATH": str(var / "outbox" / f"{backend}.jsonl"),
        "SIGNING_SERVICE_TOKEN": TOKEN,
        "PUBLIC_BASE_URL": "http://testserver.local",
    }
    return load_settings({**base, **env})


@pytest.fixture
def settings(service_var: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(service_var, backend, request)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class Api:
    """The test client with the bearer token, returning (status, json)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    @property
    def ctx(self) -> Context:
        return self.client.server.app[CTX]

    async def get(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> tuple[int, Any]:
        async with self.client.get(path, headers={**self.headers, **(headers or {})}, **kw) as r:
            return r.status, await r.json()

    async def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, Any]:
        async with self.client.post(path, json=body, headers={**self.headers, **(headers or {})}, **kw) as r:
            return r.status, await r.json()


@pytest.fixture
async def api(
    aiohttp_client: Callable[..., Any], settings: Settings, clock: ManualClock
) -> AsyncIterator[Api]:
    client = await aiohttp_client(create_app(settings, clock=clock))
    yield Api(client)


class Fresh:
    """A request made for one test (own code, phone and e-mail), so tests never share state."""

    def __init__(self, code: str, phone: str, email: str | None, doc_ids: list[int]) -> None:
        self.code, self.phone, self.email, self.doc_ids = code, phone, email, doc_ids


async def make_request(
    api: Api,
    kinds: tuple[str, ...] = ("hdmbd_sinh_hoat", "bb_thoa_thuan_dau_noi"),
    email: bool = True,
    name: str = "Phạm Thị Thu Hằng",
) -> Fresh:
    import random

    from sqlalchemy import select

    from signing_service.demo.data import NewRequest, add_request
    from signing_service.models import Document, Request

    rng = random.SystemRandom()
    async with api.ctx.db.read() as s:  # the session's tests share one database: never a taken code
        taken = set((await s.execute(select(Request.code).where(Request.code.like("PC05TK%")))).scalars())
    code = f"PC05TK{rng.randrange(8_000_000, 9_999_999):07d}"
    while code in taken:
        code = f"PC05TK{rng.randrange(8_000_000, 9_999_999):07d}"
    phone = f"09{rng.randrange(10**8):08d}"
    mail = f"kh{rng.randrange(10**8)}@example.com" if email else None
    now = api.ctx.clock.now()
    async with api.ctx.db.write() as s:
        req = await add_request(
            s,
            NewRequest(
                code,
                "PC05TK",
                name,
                "27 Trần Cao Vân, P. An Mỹ, TP Tam Kỳ, Quảng Nam",
                phone,
                mail,
                "lv_new_supply",
                now - timedelta(days=1),
                "contract_signing",
                documents=[(k, "awaiting_signature") for k in kinds],
                id_number="049190001111",
                relative_dates=False,
            ),
            now,
        )
        ids = list((await s.execute(select(Document.id).where(Document.request_id == req.id))).scalars())
    return Fresh(code, phone, mail, sorted(ids))


def outbox_messages(settings: Settings, to: str) -> list[dict[str, Any]]:
    return demo_data.outbox_messages(settings.outbox_path, to)


def wrong_code(code: str) -> str:
    """A six-digit code that is surely not `code`."""
    return f"{(int(code) + 1) % 10**6:06d}"


def last_code(settings: Settings, to: str) -> str:
    import re

    messages = outbox_messages(settings, to)
    assert messages, f"no message sent to {to}"
    found = re.findall(r"(?<!\d)\d{6}(?!\d)", messages[-1]["text"])
    assert len(found) == 1, messages[-1]["text"]
    return found[0]
