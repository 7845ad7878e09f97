"""deploy/rasa_speedups.py: Rasa's endpoint requests (custom actions) reuse pooled connections."""

from __future__ import annotations

import asyncio

from aiohttp import web
from rasa.utils.endpoints import EndpointConfig

from deploy import rasa_speedups


async def test_action_calls_share_connections_and_keep_auth(aiohttp_server: object) -> None:
    assert rasa_speedups.install()
    ports: list[int] = []
    seen: list[tuple[str | None, str | None]] = []

    async def webhook(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(peer[1] if peer else -1)
        seen.append((request.headers.get("Authorization"), request.query.get("token")))
        return web.json_response({"events": [], "n": (await request.json())["n"]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    server = await aiohttp_server(app)  # type: ignore[operator]
    endpoint = EndpointConfig(
        f"http://127.0.0.1:{server.port}/webhook",
        token="t0k",
        basic_auth={"username": "rasa", "password": "pw"},
    )
    answers = [await endpoint.request(json={"n": i}, method="post") for i in range(10)]
    assert [a["n"] for a in answers] == list(range(10))
    assert len(set(ports)) == 1, ports  # one TCP connection for ten calls (Rasa alone opened ten)
    assert all(auth and auth.startswith("Basic ") and token == "t0k" for auth, token in seen)

    # Idle longer than the pool keeps connections: the next call opens a new one and succeeds.
    await asyncio.sleep(rasa_speedups.POOLED_IDLE_S + 0.5)
    assert (await endpoint.request(json={"n": 99}, method="post"))["n"] == 99
    assert len(set(ports)) == 2

    # Concurrent calls each get a connection; all answered.
    many = await asyncio.gather(*(endpoint.request(json={"n": i}, method="post") for i in range(20)))
    assert sorted(a["n"] for a in many) == list(range(20))
