"""Attacks on the desk from the security review, one test (or more) each; no Rasa needed.

1 open redirect after login, 2 login throttle (flooding, lock-out, one address clearing another's
failures), 3 DESK_PUBLIC_ORIGIN behind an HTTPS proxy, 4 CSRF tokens bound to the session,
5 canned replies edited by supervisors only, 6 /demo off in production, 7 idle sessions expire,
8 Unicode digits in paths and query numbers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa

from agent_desk import db
from agent_desk.config import ConfigError, Settings
from agent_desk.keys import DESK
from agent_desk.security import CSRF_COOKIE, SESSION_COOKIE, LoginThrottle
from tests.desk.conftest import (
    CSRF_RE,
    PASSWORD,
    REMOTE_HEADER,
    add_account,
    csrf_of,
    desk_settings,
    login,
)

PRODUCTION = {
    "APP_ENV": "production",
    "DESK_SECRET_KEY": "k" * 40,
    "RASA_AUTH_TOKEN": "r" * 30,
    "SIGNING_SERVICE_TOKEN": "s" * 30,
    "DESK_API_TOKEN": "d" * 30,
}


async def post_login(client, username, password, token, remote=None, next_url="/", headers=None):
    headers = dict(headers or {})
    if remote:
        headers[REMOTE_HEADER] = remote
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_url},
        headers=headers,
        allow_redirects=False,
    )


def cookie(client, name):
    morsel = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(name)
    return morsel.value if morsel else None


async def shift_sessions(client, seconds, created_only=False):
    """Move every session `seconds` into the past: as if it had last been used that long ago."""
    s = db.sessions
    values = {"created_at": s.c.created_at - seconds}
    if not created_only:
        values["expires_at"] = s.c.expires_at - seconds
    async with client.app[DESK].engine.begin() as conn:
        await conn.execute(s.update().values(**values))


# ---------------------------------------------------------------------- 1 open redirect
OFF_SITE = [
    "/\\evil.example",
    "//evil.example",
    "/\\\\evil",
    "\\\\evil.example",
    "///evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "HTTPS://evil.example/",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\nSet-Cookie: pwned=1",
    "\t//evil.example",
    " //evil.example",
    "/\u3000/evil.example",
    "/\x00/evil.example",
]


async def test_login_next_never_leaves_the_site(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    for target in OFF_SITE:
        client.session.cookie_jar.clear()
        page = await client.get("/login", params={"next": target})
        assert page.status == 200, repr(target)
        assert 'name="next" value="/"' in await page.text(), repr(target)
        token = CSRF_RE.search(await page.text()).group(1)
        resp = await post_login(client, "lan", PASSWORD, token, next_url=target)
        assert resp.status == 303, (repr(target), await resp.text())
        assert resp.headers["Location"] == "/", repr(target)
    # Local targets still work, and the login redirect carries the whole path and query.
    for target in ("/conversations/5", "/canned?x=1&y=2", "/supervisor#top"):
        client.session.cookie_jar.clear()
        token = await csrf_of(client, "/login")
        resp = await post_login(client, "lan", PASSWORD, token, next_url=target)
        assert resp.headers["Location"] == target
    client.session.cookie_jar.clear()
    resp = await client.get("/canned?x=1&y=2", allow_redirects=False)
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query) == {"next": ["/canned?x=1&y=2"]}


# ---------------------------------------------------------------------- 2 login throttle
AGENT_IP, ATTACKER_IP = "10.20.0.7", "203.0.113.66"


async def test_an_attacker_elsewhere_cannot_lock_an_agent_out(desk_factory):
    client = await desk_factory(background=False, remote_header=True)
    await add_account(client, "lan")
    token = await csrf_of(client, "/login")
    statuses = [
        (await post_login(client, "lan", f"doan-sai-{i}", token, ATTACKER_IP)).status for i in range(40)
    ]
    assert statuses == [401] * 5 + [429] * 35  # 40 tried, 5 checked, 35 refused
    # The attacker's address is refused even with the right password ...
    assert (await post_login(client, "lan", PASSWORD, token, ATTACKER_IP)).status == 429
    # ... the agent at their own desk gets in.
    assert (await post_login(client, "lan", PASSWORD, token, AGENT_IP)).status == 303


async def test_a_login_from_one_address_does_not_clear_anothers_failures(desk_factory):
    client = await desk_factory(background=False, remote_header=True)
    await add_account(client, "lan")
    token = await csrf_of(client, "/login")
    for i in range(4):
        assert (await post_login(client, "lan", f"sai-{i}", token, ATTACKER_IP)).status == 401
    assert (await post_login(client, "lan", PASSWORD, token, AGENT_IP)).status == 303
    client.session.cookie_jar.clear()
    token = await csrf_of(client, "/login")
    assert (await post_login(client, "lan", "sai-4", token, ATTACKER_IP)).status == 401
    assert (await post_login(client, "lan", "sai-5", token, ATTACKER_IP)).status == 429


def _addresses(network: str, n: int) -> list[str]:
    hosts = ipaddress.ip_network(network).hosts()
    return [str(next(hosts)) for _ in range(n)]


def test_a_flood_of_failures_does_not_reset_a_blocked_name():
    t = LoginThrottle()
    for _ in range(5):
        t.failed("lan", ATTACKER_IP)
    assert t.blocked("lan", ATTACKER_IP)
    # 25 000 failures, each a new name from a new address (more than any map holds).
    for i, address in enumerate(_addresses("198.18.0.0/15", 25_000)):
        t.failed(f"flood-{i}", address)
    assert t.blocked("lan", ATTACKER_IP)
    assert not t.blocked("lan", AGENT_IP)
    assert max(t.sizes().values()) <= t.capacity  # memory stays bounded


def test_a_distributed_attack_costs_addresses_and_never_locks_the_agent_out():
    t = LoginThrottle()
    tried = refused = 0
    for address in _addresses("192.0.2.0/24", 40):
        for _ in range(10):  # each address tries until refused
            if t.blocked("lan", address):
                refused += 1
                break
            tried += 1
            t.failed("lan", address)
    # 4 addresses x 5 tries put the name under attack; then 2 tries per new address.
    assert (tried, refused) == (4 * 5 + 36 * 2, 40)
    assert not t.blocked("lan", AGENT_IP)
    # One typo of the agent is forgiven even while the name is under attack.
    t.failed("lan", AGENT_IP)
    assert not t.blocked("lan", AGENT_IP)
    # A flood of new names and addresses does not end the attack state either.
    for i, address in enumerate(_addresses("198.18.0.0/15", 25_000)):
        t.failed(f"flood-{i}", address)
    assert t.blocked("lan", "192.0.2.40")
    t.succeeded("lan", AGENT_IP)  # the agent got in: their own count is cleared, nobody else's
    assert t.blocked("lan", "192.0.2.40")


def test_an_ipv6_network_counts_as_one_address():
    t = LoginThrottle()
    for i in range(30):
        t.failed(f"name-{i}", f"2001:db8:1:2::{i + 1:x}")
    assert t.blocked("someone", "2001:db8:1:2::ffff")  # the same /64
    assert not t.blocked("someone", "2001:db8:1:3::1")


# ---------------------------------------------------------------------- 3 DESK_PUBLIC_ORIGIN
@pytest.mark.parametrize(
    "value",
    [
        "desk.example.vn",
        "ftp://desk.example.vn",
        "https://",
        "https://desk.example.vn/desk",
        "https://desk.example.vn?x=1",
        "https://desk.example.vn#top",
        "https://user@desk.example.vn",
        "https://desk.example.vn:99999",
    ],
)
def test_a_bad_public_origin_is_refused_at_start(value):
    with pytest.raises(ConfigError, match="DESK_PUBLIC_ORIGIN"):
        Settings.from_env({"DESK_PUBLIC_ORIGIN": value})


def test_the_public_origin_is_normalised():
    assert Settings.from_env({}).public_origin == ""
    for value, origin in [
        ("https://desk.example.vn", "https://desk.example.vn"),
        ("https://Desk.Example.VN:443/", "https://desk.example.vn"),
        ("http://127.0.0.1:8900", "http://127.0.0.1:8900"),
        ("https://desk.example.vn:8443", "https://desk.example.vn:8443"),
    ]:
        assert Settings.from_env({"DESK_PUBLIC_ORIGIN": value}).public_origin == origin


async def test_behind_an_https_proxy_the_public_origin_is_checked_and_cookies_are_secure(
    desk_factory, tmp_path
):
    origin = "https://desk.example.vn"
    client = await desk_factory(desk_settings(tmp_path, env={"DESK_PUBLIC_ORIGIN": origin}), background=False)
    await add_account(client, "lan")
    page = await client.get("/login")  # the app itself is reached over http on 127.0.0.1
    assert "Secure" in page.headers["Set-Cookie"]
    seed = page.cookies[CSRF_COOKIE].value
    token = CSRF_RE.search(await page.text()).group(1)
    form = {"username": "lan", "password": PASSWORD, "csrf_token": token}
    host_origin = f"http://{client.host}:{client.port}"
    for headers in ({"Origin": host_origin}, {"Referer": host_origin + "/login"}):
        resp = await client.post(
            "/login", data=form, headers=headers, cookies={CSRF_COOKIE: seed}, allow_redirects=False
        )
        assert resp.status == 403, headers
    resp = await client.post(
        "/login", data=form, headers={"Origin": origin}, cookies={CSRF_COOKIE: seed}, allow_redirects=False
    )
    assert resp.status == 303
    session = [c for c in resp.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE + "=")][0]
    assert "Secure" in session


async def test_a_foreign_referer_is_refused(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    token = await csrf_of(client, "/login")
    resp = await post_login(client, "lan", PASSWORD, token, headers={"Referer": "https://evil.example/x"})
    assert resp.status == 403
    own = f"http://{client.host}:{client.port}/login"
    assert (await post_login(client, "lan", PASSWORD, token, headers={"Referer": own})).status == 303


# ---------------------------------------------------------------------- 4 CSRF bound to the session
async def test_a_csrf_token_from_one_session_is_refused_in_another(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await add_account(client, "hung", role="supervisor")
    token_a = await login(client, "lan")
    seed_a = cookie(client, CSRF_COOKIE)
    client.session.cookie_jar.clear()
    token_b = await login(client, "hung")
    session_b, seed_b = cookie(client, SESSION_COOKIE), cookie(client, CSRF_COOKIE)
    assert token_a != token_b
    # The attacker's own seed and token (planted as cookies, e.g. from a sibling sub-domain) do not
    # carry over to the victim's session.
    for seed, token in ((seed_a, token_a), (seed_b, token_a)):
        resp = await client.post(
            "/logout",
            data={"csrf_token": token},
            cookies={SESSION_COOKIE: session_b, CSRF_COOKIE: seed},
            allow_redirects=False,
        )
        assert resp.status == 403
    # The victim's own token does.
    resp = await client.post("/logout", data={"csrf_token": token_b}, allow_redirects=False)
    assert resp.status == 303


# ---------------------------------------------------------------------- 5 canned replies
async def test_only_supervisors_create_edit_or_delete_canned_replies(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await add_account(client, "hung", role="supervisor")
    desk = client.app[DESK]
    before = await desk.canned()
    first = before[0]
    token = await login(client, "lan")
    html = await (await client.get("/canned")).text()
    assert first["title"] in html and 'action="/canned"' not in html and "/delete" not in html
    for path, data in (
        ("/canned", {"title": "Mới", "text": "Nội dung"}),
        ("/canned", {"id": str(first["id"]), "title": "Sửa", "text": "Nội dung"}),
        (f"/canned/{first['id']}/delete", {}),
    ):
        resp = await client.post(path, data={**data, "csrf_token": token}, allow_redirects=False)
        assert resp.status == 403, path
        assert "giám sát viên" in await resp.text()
    assert await desk.canned() == before
    client.session.cookie_jar.clear()
    token = await login(client, "hung")
    assert 'action="/canned"' in await (await client.get("/canned")).text()
    resp = await client.post(
        "/canned", data={"title": "Mới", "text": "Nội dung", "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    resp = await client.post(
        f"/canned/{first['id']}/delete", data={"csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    titles = [c["title"] for c in await desk.canned()]
    assert "Mới" in titles and first["title"] not in titles


# ---------------------------------------------------------------------- 6 /demo in production
async def _demo_statuses(client):
    token = await csrf_of(client, "/login")
    return [
        (await client.get("/demo")).status,
        (await client.get("/demo/api/messages?after=0")).status,
        (await client.post("/demo/api/send", json={"message": "hi"}, headers={"X-CSRF-Token": token})).status,
        (await client.post("/demo/api/reset", headers={"X-CSRF-Token": token})).status,
        (await client.post("/demo/api/reset")).status,
    ]


async def test_demo_is_off_in_production_unless_enabled(desk_factory, tmp_path):
    client = await desk_factory(desk_settings(tmp_path, env=PRODUCTION), background=False)
    assert await _demo_statuses(client) == [404] * 5
    page = await client.get("/demo")
    assert "Không tìm thấy" in await page.text()  # the desk's own Vietnamese 404 page
    await add_account(client, "lan")
    await login(client, "lan")
    assert 'href="/demo"' not in await (await client.get("/")).text()

    on = desk_settings(tmp_path, env={**PRODUCTION, "DESK_DEMO_ENABLED": "1"})
    assert on.demo_enabled
    client = await desk_factory(on, background=False)
    assert (await client.get("/demo")).status == 200
    off = desk_settings(tmp_path, env={"DESK_DEMO_ENABLED": "0"})
    assert not off.demo_enabled and desk_settings(tmp_path).demo_enabled
    with pytest.raises(ConfigError, match="DESK_DEMO_ENABLED"):
        desk_settings(tmp_path, env={"DESK_DEMO_ENABLED": "oui"})


# ---------------------------------------------------------------------- 7 idle sessions
async def test_an_idle_session_expires(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await login(client, "lan")
    assert (await client.get("/", allow_redirects=False)).status == 200
    await shift_sessions(client, 1801)
    assert (await client.get("/api/queue")).status == 401
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login?expired=1"
    page = await client.get(resp.headers["Location"])
    assert "hết hạn" in await page.text()  # told why, on the login page
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/login"  # cookie gone
    async with client.app[DESK].engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(db.sessions)) == 0


async def test_each_use_extends_a_session_up_to_its_absolute_lifetime(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await login(client, "lan")
    for _ in range(3):  # 3000 s since login, never 1800 s without a request
        await shift_sessions(client, 1000)
        assert (await client.get("/api/queue")).status == 200
    await shift_sessions(client, 12 * 3600, created_only=True)
    assert (await client.get("/api/queue")).status == 401


async def test_an_open_event_stream_ends_when_its_session_expires(desk_factory, monkeypatch):
    from agent_desk import views

    monkeypatch.setattr(views, "KEEPALIVE", 0.2)
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await login(client, "lan")
    resp = await client.get("/api/events")
    assert resp.status == 200
    assert b"event: queue" in await resp.content.readuntil(b"\n\n")
    await shift_sessions(client, 1801)

    async def drain() -> None:
        while await resp.content.readany():
            pass

    await asyncio.wait_for(drain(), 5)  # the server closed the stream
    resp.close()


def test_idle_timeout_setting():
    assert Settings.from_env({}).idle_timeout == 1800
    assert Settings.from_env({"DESK_IDLE_TIMEOUT_S": "900"}).idle_timeout == 900
    with pytest.raises(ConfigError, match="DESK_IDLE_TIMEOUT_S"):
        Settings.from_env({"DESK_IDLE_TIMEOUT_S": "demi-heure"})


# ---------------------------------------------------------------------- 8 Unicode digits
UNICODE_NUMBERS = ["²", "٣", "３", "3²", "१", "1_0", " 3", "99999999999999999999"]


async def test_unicode_digits_give_400_or_404_never_500(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await add_account(client, "hung", role="supervisor")
    now = time.time()
    async with client.app[DESK].engine.begin() as conn:
        for i in (1, 2, 3):
            await conn.execute(
                db.handoffs.insert().values(
                    id=i, sender_id=f"c{i}", channel="rest", status="closed", requested_at=now, queued_at=now
                )
            )
    token = await login(client, "hung")
    before = await client.app[DESK].canned()
    await client.get("/demo")  # the demo cookie, so /demo/api/messages parses `after`
    seen = []
    for raw in UNICODE_NUMBERS:
        for method, path, data in (
            ("GET", f"/conversations/{raw}", None),
            ("POST", f"/conversations/{raw}/claim", {"csrf_token": token}),
            ("POST", f"/canned/{raw}/delete", {"csrf_token": token}),
            ("POST", "/canned", {"id": raw, "title": "T", "text": "X", "csrf_token": token}),
            ("GET", "/api/events?" + urlencode({"conversation": raw}), None),
            ("GET", "/demo/api/messages?" + urlencode({"after": raw}), None),
        ):
            resp = await client.request(method, path, data=data, allow_redirects=False)
            seen.append((method, path, resp.status))
            resp.close()
    bad = [s for s in seen if s[2] not in {400, 404}]
    assert not bad, bad
    assert await client.app[DESK].canned() == before
    # ASCII ids still work.
    assert (await client.get("/conversations/3")).status == 200


async def test_open_event_streams_end_when_the_desk_stops(desk_factory):
    """aiohttp's graceful shutdown waits for running handlers (60 s): the desk's on_shutdown ends
    the browsers' event streams first, so a stop or restart of the desk is not held by them."""
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await login(client, "lan")
    streams = [await client.get("/api/events") for _ in range(2)]
    for resp in streams:
        assert resp.status == 200
        assert b"event: queue" in await resp.content.readuntil(b"\n\n")
    assert client.app[DESK].hub.subscribers == 2

    async def drain(resp) -> bytes:
        rest = b""
        while chunk := await resp.content.readany():
            rest += chunk
        return rest

    await client.app.shutdown()  # what the server's shutdown runs before waiting for handlers
    for resp in streams:
        assert b"closed" not in await asyncio.wait_for(drain(resp), 5)  # ended, nothing more sent
        resp.close()
    assert client.app[DESK].hub.subscribers == 0


async def test_the_event_follower_stops_while_waiting_for_rasas_event_table(tmp_path):
    """Before Rasa has created its events file, the follower waits for it: a stop must end that wait
    (the desk's shutdown otherwise waited its 3 s grace and cancelled it)."""
    from agent_desk.broker import CursorStore, SqlBrokerSource

    class NoCursor(CursorStore):
        def __init__(self) -> None:
            self.saved: list[int] = []

        async def load(self) -> int | None:
            return None

        async def save(self, position: int) -> None:
            self.saved.append(position)

    cursor = NoCursor()
    source = SqlBrokerSource(tmp_path / "not-yet.db", cursor, poll_interval=0.05)
    delivered: list[object] = []

    async def sink(event: object) -> None:
        delivered.append(event)

    task = asyncio.create_task(source.run(sink))
    await asyncio.sleep(0.3)
    assert not task.done()  # still waiting for the file
    source.stop()
    await asyncio.wait_for(task, 1)
    assert cursor.saved == [] and delivered == []  # no position invented
