"""Login, sessions, roles, CSRF and escaping of the desk (no Rasa needed)."""

from __future__ import annotations

from agent_desk.keys import DESK
from tests.desk.conftest import PASSWORD, add_account, csrf_of, login


async def test_pages_need_login(desk_factory):
    client = await desk_factory(background=False)
    for path in ("/", "/canned", "/supervisor", "/conversations/1"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302, path
        assert resp.headers["Location"].startswith("/login")
    resp = await client.get("/api/queue")
    assert resp.status == 401
    assert (await client.get("/health")).status == 200


async def test_login_sets_hardened_cookies_and_logout_ends_the_session(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", name="Lan")
    page = await client.get("/login")
    assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Strict" in page.headers["Set-Cookie"]
    token = await csrf_of(client, "/login")
    resp = await client.post(
        "/login", data={"username": "lan", "password": PASSWORD, "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    cookie = [c for c in resp.headers.getall("Set-Cookie") if c.startswith("desk_session=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age" in cookie
    assert "Secure" not in cookie  # served on 127.0.0.1 in the test
    # The CSRF seed rotates at login: the token of the login page is no longer valid.
    new_token = await csrf_of(client, "/")
    assert new_token != token
    stolen = client.session.cookie_jar.filter_cookies(client.make_url("/"))["desk_session"].value
    page = await client.get("/")
    assert "Lan" in await page.text()

    resp = await client.post("/logout", data={"csrf_token": new_token}, allow_redirects=False)
    assert resp.status == 303
    # The old cookie value no longer opens a session (it was deleted server-side).
    client.session.cookie_jar.update_cookies({"desk_session": stolen})
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302
    # Pages are never cached: Back after logging out asks the server (and lands on the login page).
    assert page.headers["Cache-Control"] == "no-store" and resp.headers["Cache-Control"] == "no-store"


async def test_cookies_are_secure_off_localhost(desk_factory):
    client = await desk_factory(background=False)
    resp = await client.get("/login", headers={"Host": "desk.evncpc.example"})
    assert "Secure" in resp.headers["Set-Cookie"]


async def test_wrong_password_and_throttling(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    token = await csrf_of(client, "/login")
    for _ in range(5):
        resp = await client.post(
            "/login", data={"username": "lan", "password": "sai-mat-khau", "csrf_token": token}
        )
        assert resp.status == 401
        assert "Sai tên đăng nhập hoặc mật khẩu" in await resp.text()
    # Even the right password is refused while the account is throttled.
    resp = await client.post("/login", data={"username": "lan", "password": PASSWORD, "csrf_token": token})
    assert resp.status == 429


async def test_unknown_and_disabled_accounts_cannot_log_in(desk_factory):
    from agent_desk import accounts

    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await accounts.set_active(client.app[DESK].engine, "lan", False)
    token = await csrf_of(client, "/login")
    for name in ("lan", "khong-co"):
        resp = await client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
        assert resp.status == 401


async def test_login_redirect_stays_on_site(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    token = await csrf_of(client, "/login")
    resp = await client.post(
        "/login",
        data={"username": "lan", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == "/"


async def test_csrf_is_required_on_every_post(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", role="supervisor")  # /canned posts are for supervisors
    # Login form without / with a wrong token.
    await client.get("/login")
    resp = await client.post("/login", data={"username": "lan", "password": PASSWORD})
    assert resp.status == 403
    resp = await client.post("/login", data={"username": "lan", "password": PASSWORD, "csrf_token": "0" * 64})
    assert resp.status == 403
    token = await login(client, "lan")
    # Form posts and fetch() posts need it too, and a foreign Origin is refused even with a token.
    assert (await client.post("/canned", data={"title": "a", "text": "b"})).status == 403
    resp = await client.post(
        "/conversations/1/reply", json={"text": "xin chào"}, headers={"X-Requested-With": "fetch"}
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "forbidden"
    resp = await client.post(
        "/canned",
        data={"title": "a", "text": "b", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status == 403
    resp = await client.post("/logout", allow_redirects=False)
    assert resp.status == 403
    # With the token (form field or header) the same requests go through.
    resp = await client.post(
        "/canned", data={"title": "Mẫu", "text": "Nội dung", "csrf_token": token}, allow_redirects=False
    )
    assert resp.status == 303
    resp = await client.post(
        "/conversations/999/reply",
        json={"text": "xin chào"},
        headers={"X-Requested-With": "fetch", "X-CSRF-Token": token},
    )
    assert resp.status == 404  # passed CSRF, then: no such conversation
    # The demo chat's posts are protected as well.
    assert (await client.post("/demo/api/send", json={"message": "hi"})).status == 403


async def test_supervisor_page_is_for_supervisors(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    await add_account(client, "hung", role="supervisor", name="Hùng")
    await login(client, "lan")
    assert (await client.get("/supervisor")).status == 403
    assert (await client.get("/api/supervisor")).status == 403
    client.session.cookie_jar.clear()
    await login(client, "hung")
    resp = await client.get("/supervisor")
    assert resp.status == 200
    assert "Theo nhân viên" in await resp.text()
    stats = await (await client.get("/api/supervisor")).json()
    assert stats["queue_length"] == 0 and {a["username"] for a in stats["agents"]} == {"lan", "hung"}


async def test_templates_escape_user_content(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", role="supervisor")
    token = await login(client, "lan")
    evil = '<script>alert("x")</script>'
    resp = await client.post("/canned", data={"title": evil, "text": evil, "csrf_token": token})
    assert resp.status == 200
    html = await (await client.get("/canned")).text()
    assert evil not in html
    assert "&lt;script&gt;" in html
    assert "Content-Security-Policy" in resp.headers


async def test_canned_responses_are_seeded_and_editable_by_a_supervisor(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan", role="supervisor")
    token = await login(client, "lan")
    canned = await client.app[DESK].canned()
    assert any("19001909" in c["text"] for c in canned)
    first = canned[0]
    resp = await client.post(
        "/canned",
        data={"id": str(first["id"]), "title": "Chào", "text": "Dạ em chào anh/chị", "csrf_token": token},
    )
    assert resp.status == 200
    assert {"id": first["id"], "title": "Chào", "text": "Dạ em chào anh/chị"} in await client.app[
        DESK
    ].canned()
    resp = await client.post("/canned", data={"title": "", "text": "x", "csrf_token": token})
    assert resp.status == 400
    await client.post(f"/canned/{first['id']}/delete", data={"csrf_token": token})
    assert first["id"] not in [c["id"] for c in await client.app[DESK].canned()]


async def test_unknown_or_absurd_ids_are_404(desk_factory):
    client = await desk_factory(background=False)
    await add_account(client, "lan")
    token = await login(client, "lan")
    for path in (
        "/conversations/42",
        "/conversations/99999999999999999999999",
        "/api/events?conversation=1e9",
    ):
        assert (await client.get(path)).status == 404, path
    resp = await client.post("/conversations/99999999999999999999999/claim", data={"csrf_token": token})
    assert resp.status == 404


def test_throttle_limits_per_name_and_address_pair_and_per_address():
    from agent_desk.security import LoginThrottle

    t = LoginThrottle(limit=2, ip_limit=3, user_limit=4, attacked_limit=1)
    t.failed("a", "10.0.0.1")
    t.failed("b", "10.0.0.1")
    assert not t.blocked("c", "10.0.0.1")
    t.failed("a", "10.0.0.1")
    assert t.blocked("a", "10.0.0.1")  # the name, from that address
    assert not t.blocked("a", "10.0.0.2")  # not from another one
    assert t.blocked("c", "10.0.0.1")  # the address, for any name
    t.succeeded("c", "10.0.0.1")
    assert t.blocked("d", "10.0.0.1")
    assert not t.blocked("c", "10.0.0.2")
    t.failed("a", "10.0.0.3")
    t.failed("a", "10.0.0.4")  # 4 failures on "a": under attack, one failure blocks an address
    assert t.blocked("a", "10.0.0.3") and not t.blocked("a", "10.0.0.5")


async def test_a_failed_login_does_not_write_what_was_typed(desk_factory, caplog):
    """People type phone numbers, e-mails or their password into the name field (found by the fuzz
    test): the log keeps a hash tag an operator can match, not the text."""
    import logging

    from agent_desk.views import username_tag

    client = await desk_factory(background=False)
    typed = "số điện thoại 0905123456, an@example.com"
    token = await csrf_of(client, "/login")
    with caplog.at_level(logging.INFO, logger="agent_desk.views"):
        resp = await client.post("/login", data={"username": typed, "password": "x", "csrf_token": token})
    assert resp.status == 401
    text = caplog.text
    assert "failed login" in text and username_tag(typed.lower()) in text
    assert "0905123456" not in text and "an@example.com" not in text
