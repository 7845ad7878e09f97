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
    """A custom action call with the domain: the action server gets the JSON document `json.dumps`
    gives (values and key order; compact, ASCII like it), the domain's JSON is made once per domain
    object, and a validate_* form action gets it without the responses unless it is marked
    `send_domain: true`."""
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
    real_dumps = rasa_speedups.dumps

    def counting_dumps(obj: object) -> str:
        encoded.append(obj)
        return real_dumps(obj)

    monkeypatch.setattr(rasa_speedups, "dumps", counting_dumps)  # type: ignore[attr-defined]

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

    def document(raw: str | bytes) -> object:  # nested (key, value) lists: key order counts
        return json.loads(raw, object_pairs_hook=list)

    assert [document(b) for b in bodies] == [document(json.dumps(b)) for b in expected]
    assert all(b.isascii() and b", " not in b[:200] for b in bodies)
    assert sum(obj is domain.as_dict() for obj in encoded) == 1  # five calls, one encoding
    assert sum(obj is other.as_dict() for obj in encoded) == 1


def test_the_json_of_a_call_is_what_json_dumps_means_for_every_value() -> None:
    """ujson where it agrees with `json.dumps`; the values it writes differently or refuses go to
    `json.dumps` (same document, or the TypeError stock Rasa raises)."""
    import json

    import numpy as np
    import pytest

    values: list[object] = [
        float("nan"),
        float("inf"),
        -0.0,
        1e-7,
        0.1 + 0.2,
        5e-324,
        1e22,
        2**70,
        -(2**64),
        "\ud800 lone surrogate",
        "Điện lực Tam Kỳ 😀",
        "\u2028\x00</script>a/b",
        {1: 2, None: 3, 2.5: 4},
        (1, [2, {"k": ()}]),
        np.float64(0.5),
    ]
    for value in values:
        out = rasa_speedups.dumps(value)
        assert out.isascii()
        got, want = json.loads(out), json.loads(json.dumps(value))
        assert got == want or (got != got and want != want), (value, out)  # NaN != NaN
    for bad in (object(), {1, 2}, b"x", np.float32(0.5)):
        with pytest.raises(TypeError):
            rasa_speedups.dumps(bad)
