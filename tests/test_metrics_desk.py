"""The agent desk's /metrics: the queue's length, read at scrape time, and its routes by pattern."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent_desk.app import create_app
from agent_desk.keys import DESK
from common import metrics, request_id
from tests.desk.conftest import desk_settings, queue


@pytest.fixture
async def desk_client(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> TestClient:
    return await aiohttp_client(create_app(desk_settings(tmp_path), background=False))


def values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    ]


async def test_waiting_handoffs_and_routes(desk_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.TOKEN_ENV, raising=False)
    client = desk_client
    desk = client.app[DESK]
    await queue(desk)
    await queue(desk)
    async with client.get("/login", headers={request_id.HEADER: "desk-test-0001"}) as r:
        assert r.status == 200
        assert r.headers[request_id.HEADER] == "desk-test-0001"
    async with client.get("/metrics") as r:
        assert r.status == 200
        text = await r.text()
    assert values(text, "cskh_handoffs_waiting") == [({}, 2.0)]
    logins = [
        v
        for lb, v in values(text, "cskh_http_request_duration_seconds_count")
        if lb.get("service") == "desk" and lb.get("route") == "/login" and lb.get("status") == "200"
    ]
    assert logins and logins[0] >= 1
    assert [lb for lb, _ in values(text, "cskh_db_pool_checked_out") if lb == {"service": "desk"}]
