"""/metrics and request ids on the signing service's aiohttp app (the agent desk is wired the same way)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common import metrics, request_id
from signing_service.http.app import create_app
from signing_service.settings import Settings, load_settings

TOKEN = "test-signing-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CODE = "PC05TK0000123"


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics-var")


def signing_settings(var: Path) -> Settings:
    return load_settings(
        {
            "APP_ENV": "test",
            "SIGNING_VAR_DIR": str(var),
            "DATABASE_URL": f"sqlite:///{var / 'signing.db'}",
            "OUTBOX_PATH": str(var / "outbox.jsonl"),
            "SIGNING_SERVICE_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": "http://testserver.local",
        }
    )


@pytest.fixture
def settings(var: Path) -> Settings:
    return signing_settings(var)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


async def test_metrics_after_a_request_use_the_route_pattern(
    aiohttp_client: Callable[..., Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.TOKEN_ENV, raising=False)
    client = await aiohttp_client(create_app(settings))
    before = metrics.HTTP_LATENCY.labels("signing", "GET", "/v1/requests/{code}", "200")._sum.get()
    async with client.get(f"/v1/requests/{CODE}", headers=AUTH) as r:
        assert r.status == 200
    async with client.get("/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    assert CODE not in text  # the route label is the pattern, never the path
    found = samples(text)
    counts = [
        s
        for s in found
        if s[0] == "cskh_http_request_duration_seconds_count"
        and s[1] == {"service": "signing", "method": "GET", "route": "/v1/requests/{code}", "status": "200"}
    ]
    assert counts and counts[0][2] >= 1
    assert metrics.HTTP_LATENCY.labels("signing", "GET", "/v1/requests/{code}", "200")._sum.get() > before
    names = {s[0] for s in found}
    # The service's own counters and the pool gauge are there too.
    assert {"cskh_otp_sessions_started_total", "cskh_otp_requests_frozen_total"} <= names
    assert any(n == "cskh_db_pool_checked_out" and lb == {"service": "signing"} for n, lb, _ in found)


async def test_unrouted_paths_are_one_label(
    aiohttp_client: Callable[..., Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.TOKEN_ENV, raising=False)
    client = await aiohttp_client(create_app(settings))
    async with client.get(f"/no/such/{CODE}") as r:
        assert r.status == 404
    async with client.get("/metrics") as r:
        text = await r.text()
    assert CODE not in text
    assert any(
        lb.get("route") == metrics.UNMATCHED and lb.get("status") == "404" for _, lb, _ in samples(text)
    )


async def test_metrics_token(
    aiohttp_client: Callable[..., Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.TOKEN_ENV, "scrape-secret-1")
    client = await aiohttp_client(create_app(settings))
    async with client.get("/metrics") as r:
        assert r.status == 401
    async with client.get("/metrics", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
    async with client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-1"}) as r:
        assert r.status == 200


def test_production_needs_a_metrics_token() -> None:
    with pytest.raises(metrics.MetricsConfigError, match="METRICS_TOKEN"):
        metrics.token_from_env({"APP_ENV": "production"})
    assert metrics.token_from_env({"APP_ENV": "production", "METRICS_TOKEN": "x" * 20}) == "x" * 20
    assert metrics.token_from_env({}) is None


async def test_request_id_is_echoed_or_made(
    aiohttp_client: Callable[..., Any], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(metrics.TOKEN_ENV, raising=False)
    client = await aiohttp_client(create_app(settings))
    async with client.get("/health", headers={request_id.HEADER: "abc123-def456"}) as r:
        assert r.headers[request_id.HEADER] == "abc123-def456"
    async with client.get("/health", headers={request_id.HEADER: "bad id <script>"}) as r:
        made = r.headers[request_id.HEADER]
    assert made != "bad id <script>" and request_id.safe(made) == made
    async with client.get("/v1/requests/x", headers={request_id.HEADER: "abc123-def457"}) as r:
        assert r.status == 401  # answered by a middleware: still carries the id
        assert r.headers[request_id.HEADER] == "abc123-def457"
