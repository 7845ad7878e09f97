"""deploy/rasa_speedups.py: Rasa's endpoint requests (custom actions) reuse pooled connections."""

from __future__ import annotations

import asyncio
from pathlib import Path

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


async def test_the_domain_is_encoded_once_and_the_body_is_rasas_own(
    aiohttp_server: object, monkeypatch: object
) -> None:
    """A custom action call with the domain: the action server gets byte for byte what `json.dumps`
    gives (key order included), the domain's JSON is made once per domain object, and a validate_*
    form action gets it without the responses unless it is marked `send_domain: true`."""
    import json

    from rasa.shared.core.domain import Domain

    assert rasa_speedups.install()
    bodies: list[bytes] = []

    async def webhook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response({"events": []})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    server = await aiohttp_server(app)  # type: ignore[operator]
    endpoint = EndpointConfig(f"http://127.0.0.1:{server.port}/webhook")
    domain = Domain.load(str(Path(__file__).parents[2] / "domain.yml"))
    encoded: list[object] = []
    real_dumps = json.dumps

    def counting_dumps(obj: object, *args: object, **kwargs: object) -> str:
        encoded.append(obj)
        return real_dumps(obj, *args, **kwargs)

    monkeypatch.setattr(rasa_speedups.json, "dumps", counting_dumps)  # type: ignore[attr-defined]

    def call(action: str, i: int, d: Domain) -> dict[str, object]:
        return {
            "next_action": action,
            "sender_id": f"s{i}",
            "tracker": {"events": [i]},
            "version": "3.6.21",
            "domain": d.as_dict(),
        }

    whole = [call("action_nlu_fallback", i, domain) for i in range(3)]
    forms = [call("validate_signing_form", i, domain) for i in range(2)]
    other = Domain.from_dict(
        {
            "intents": ["chào"],
            "responses": {"utter_x": [{"text": "Dạ"}]},
            "actions": ["validate_a_form", {"validate_b_form": {"send_domain": True}}],
        }
    )
    marked = [call("validate_a_form", 9, other), call("validate_b_form", 9, other)]
    plain = {"next_action": "a", "tracker": {}}  # no domain
    for body in [*whole, *forms, *marked, plain]:
        await endpoint.request(json=body, method="post")

    def lean(body: dict[str, object]) -> dict[str, object]:
        domain_dict = body["domain"]
        assert isinstance(domain_dict, dict) and "responses" in domain_dict
        return {**body, "domain": {k: v for k, v in domain_dict.items() if k != "responses"}}

    expected = [*whole, *(lean(b) for b in forms), lean(marked[0]), marked[1], plain]
    assert bodies == [real_dumps(b).encode() for b in expected]
    assert sum(obj is domain.as_dict() for obj in encoded) == 1  # five calls, one encoding
    assert sum(obj is other.as_dict() for obj in encoded) == 1
