"""Notifier fixtures: the fake platform APIs of the connector tests, and a fake Rasa HTTP API that
serves one conversation's events (the Zalo window) and records what the notifier appends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web

from tests.connectors.conftest import (  # noqa: F401 (fixtures)
    fake_telegram,
    fake_zalo,
    telegram_settings,
    zalo_settings,
)


class FakeRasa:
    def __init__(self) -> None:
        self.last_user_message: dict[str, float] = {}  # sender -> epoch seconds
        self.appended: dict[str, list[dict[str, Any]]] = {}
        self.tokens: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        self.tokens.append(request.query.get("token", ""))
        sender = request.match_info["sender"]
        events: list[dict[str, Any]] = [
            {"event": "action", "name": "action_listen", "timestamp": time.time()}
        ]
        if sender in self.last_user_message:
            events.insert(0, {"event": "user", "text": "hi", "timestamp": self.last_user_message[sender]})
        return web.json_response({"sender_id": sender, "events": events})

    async def _append(self, request: web.Request) -> web.Response:
        self.tokens.append(request.query.get("token", ""))
        self.appended.setdefault(request.match_info["sender"], []).extend(await request.json())
        return web.json_response({"sender_id": request.match_info["sender"]})


@pytest.fixture
async def fake_rasa(aiohttp_server: Any) -> tuple[FakeRasa, str]:
    fake = FakeRasa()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")
