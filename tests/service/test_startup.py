"""Several service instances starting together on one fresh database (replicas): no race, data once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from signing_service.http.app import create_app
from signing_service.http.keys import CTX
from signing_service.models import Meta, PowerUnit, Request

from .conftest import make_settings, new_pg_database


@pytest.fixture
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own (not the session's), so the instances create it together."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'replicas.db'}"
        return
    with new_pg_database("test_signing_start") as url:
        yield url


@pytest.mark.timeout(120)  # without the start-up lock this races (or waits on SQLite locks)
async def test_three_instances_start_together(
    aiohttp_client: Callable[..., Any],
    service_var: Path,
    backend: str,
    fresh_database: str,
    request: pytest.FixtureRequest,
) -> None:
    settings = make_settings(service_var, backend, request, DATABASE_URL=fresh_database)
    clients = await asyncio.gather(*(aiohttp_client(create_app(settings)) for _ in range(3)))
    for client in clients:
        async with client.get("/health") as r:
            assert r.status == 200
    db = clients[0].server.app[CTX].db
    async with db.read() as s:
        assert (
            await s.execute(select(func.count()).select_from(Meta).where(Meta.key == "demo_anchor"))
        ).scalar_one() == 1
        assert (
            await s.execute(select(func.count(Request.id)).where(Request.code == "PC05TK0000123"))
        ).scalar_one() == 1
        assert (await s.execute(select(func.count(PowerUnit.code)))).scalar_one() >= 20
