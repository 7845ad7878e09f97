"""Customers' images and files opened on the desk (agent_desk/customer_file_views.py): Telegram's
through getFile and the file download of the (fake) Bot API, Zalo's from an allow-listed host only,
bounded in size and time, typed from their bytes, only to logged-in staff and only files that are in
the conversation's tracker; the transcript shows images as thumbnails through the desk."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import pytest
from aiohttp import web

from agent_desk import customer_file_views as cfv
from agent_desk.config import ConfigError, Settings
from agent_desk.keys import DESK
from agent_desk.transcript import message_from_event
from tests.connectors.fakes import FakeTelegramApi
from tests.desk.conftest import add_account, desk_factory, desk_settings, login  # noqa: F401 (fixture)

TG_TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuvwxyz"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 300
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300
PDF = b"%PDF-1.4\n" + b"0" * 300 + b"\n%%EOF"
ZIP = b"PK\x03\x04" + b"\x00" * 300
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
TG_SENDER = "telegram:700100300"
ZALO_SENDER = "zalo:6142000000777"
IMG_SRC = re.compile(
    r'<img class="attach-thumb customer-thumb" src="(/conversations/\d+/customer-files/[0-9a-f]{32})"'
)


class TelegramWithFiles(FakeTelegramApi):
    """The fake Bot API plus getFile and `file/bot<token>/<file_path>` downloads."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.announced_size: dict[str, int] = {}  # file_id -> file_size getFile reports instead
        self.downloads: list[str] = []
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            super().stop()

    def build(self) -> web.Application:
        app = super().build()
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method != "getFile":
            return super()._result(method, params)
        file_id = str(params.get("file_id"))
        path, data = self.files[file_id]
        size = self.announced_size.get(file_id, len(data))
        return {"file_id": file_id, "file_unique_id": "u" + file_id, "file_size": size, "file_path": path}

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "getFile":
            params = await self._params(request)
            if str(params.get("file_id")) not in self.files:
                with self.lock:
                    self.calls.append(cfv_call(params))
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"},
                    status=400,
                )
        return await super()._handle(request)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        with self.lock:
            self.downloads.append(path)
        found = next((data for p, data in self.files.values() if p == path), None)
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found, content_type="application/octet-stream")


def cfv_call(params: dict[str, Any]) -> Any:
    from tests.connectors.fakes import TgCall

    return TgCall("getFile", params, time.time())


class Backends:
    """Rasa's HTTP API (trackers as set), the signing service's notices, and a file host (Zalo's CDN)
    that records every request."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.slow: set[str] = set()
        self.fetched: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self._tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self._append)
        app.router.add_get("/v1/notifications", self._notices)
        app.router.add_get("/cdn/{name}", self._file)
        return app

    async def _tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        return web.json_response({"sender_id": sender, "events": self.events.get(sender, []), "slots": {}})

    async def _append(self, request: web.Request) -> web.Response:
        return web.json_response({"sender_id": request.match_info["sender"]})

    async def _notices(self, request: web.Request) -> web.Response:
        return web.json_response({"notices": []})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.fetched.append(name)
        if name in self.redirects:
            raise web.HTTPFound(self.redirects[name])
        if name in self.slow:
            await asyncio.sleep(5)
        data = self.files.get(name)
        if data is None:
            return web.Response(status=404)
        # A CDN's claimed type is not trusted: the desk reads the bytes.
        return web.Response(body=data, content_type="text/html")


def user_event(sender: str, customer_file: dict[str, str], ts: float) -> dict[str, Any]:
    return {
        "sender_id": sender,
        "event": "user",
        "text": "/out_of_scope",
        "timestamp": ts,
        "input_channel": sender.split(":")[0],
        "metadata": {"customer_file": customer_file},
    }


@pytest.fixture
async def setup(aiohttp_server, desk_factory, tmp_path):  # noqa: F811
    """Returns make(token=..., **env) -> (client, backends, telegram, base_url)."""
    started: list[TelegramWithFiles] = []

    async def make(token: str | None = TG_TOKEN, **env: str):
        backends = Backends()
        server = await aiohttp_server(backends.app())
        base = str(server.make_url("")).rstrip("/")
        telegram = TelegramWithFiles(TG_TOKEN)
        telegram.start()
        started.append(telegram)
        settings = desk_settings(
            tmp_path,
            env={
                "RASA_URL": base,
                "SIGNING_SERVICE_URL": base,
                "TELEGRAM_API_BASE_URL": telegram.url,
                "DESK_CUSTOMER_FILE_HOSTS": "127.0.0.1",
                **({"TELEGRAM_BOT_TOKEN": token} if token else {}),
                **env,
            },
        )
        client = await desk_factory(settings, background=False)
        await add_account(client, "lan", name="Lan")
        await login(client, "lan")
        return client, backends, telegram, base

    yield make
    for telegram in started:
        telegram.stop()


async def conversation(client, backends: Backends, sender: str, *files: dict[str, str]) -> tuple[int, str]:
    """A handoff of `sender` whose tracker holds the customer's `files`; its id and page."""
    now = time.time() - 60
    events = [
        {
            "sender_id": sender,
            "event": "user",
            "text": "gặp nhân viên",
            "timestamp": now,
            "input_channel": "x",
        },
        {"sender_id": sender, "event": "action", "timestamp": now + 0.1, "name": "action_request_handoff"},
    ]
    events += [user_event(sender, f, now + 1 + n) for n, f in enumerate(files)]
    backends.events[sender] = events
    desk = client.app[DESK]
    for e in events[:2]:
        await desk.ingest(e)
    handoff = next(h for h in await desk.open_handoffs() if h.sender_id == sender)
    page = await client.get(f"/conversations/{handoff.id}")
    assert page.status == 200
    return handoff.id, await page.text()


def assert_safe_headers(resp) -> None:
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")


async def test_a_telegram_photo_is_fetched_with_getfile_and_shown_as_an_image(setup, caplog):
    caplog.set_level(logging.DEBUG)
    client, backends, telegram, _ = await setup()
    telegram.files["PHOTO-1"] = ("photos/file_7.jpg", JPEG)
    telegram.files["DOC-1"] = ("documents/file_8.pdf", PDF)
    telegram.files["DOC-2"] = ("documents/file_9.zip", ZIP)
    handoff_id, page = await conversation(
        client,
        backends,
        TG_SENDER,
        {"kind": "image", "file_id": "PHOTO-1", "caption": "ảnh công tơ"},
        {"kind": "file", "file_id": "DOC-1", "name": "giay-to.pdf"},
        {"kind": "file", "file_id": "DOC-2", "name": "ho-so 0905123456.zip"},
    )
    # The photo: a lazy thumbnail through the desk, linked to full size; files: links with their name.
    [src] = IMG_SRC.findall(page)
    assert src.startswith(f"/conversations/{handoff_id}/customer-files/")
    assert 'loading="lazy"' in page and "Mở ảnh cỡ đầy đủ" in page and "ảnh công tơ" in page
    links = re.findall(r'<a class="customer-file-link" href="([^"]+)"[^>]*>([^<]+)</a>', page)
    by_name = {name.removeprefix("Khách gửi tệp: "): href for href, name in links}
    assert "giay-to.pdf" in by_name and "0905123456" not in page  # the name is masked

    resp = await client.get(src)
    assert resp.status == 200 and await resp.read() == JPEG
    assert resp.headers["Content-Type"] == "image/jpeg"
    assert resp.headers["Content-Disposition"].startswith("inline")
    assert_safe_headers(resp)
    assert [c.params["file_id"] for c in telegram.sent("getFile")] == ["PHOTO-1"]
    assert telegram.downloads == ["photos/file_7.jpg"]

    pdf = await client.get(by_name["giay-to.pdf"])
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert await pdf.read() == PDF

    [zip_href] = [h for n, h in by_name.items() if n.startswith("ho-so")]
    other = await client.get(zip_href)
    assert other.status == 200 and other.headers["Content-Type"] == "application/octet-stream"
    disposition = other.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "0905123456" not in disposition
    assert_safe_headers(other)
    # The token never reaches a page, a header or a log line.
    assert TG_TOKEN not in page and TG_TOKEN.split(":")[1] not in caplog.text
    assert "photos/file_7.jpg" not in caplog.text


async def test_a_zalo_image_comes_from_an_allow_listed_host_typed_by_its_bytes(setup):
    client, backends, _, base = await setup()
    backends.files.update({"a.png": PNG, "b.svg": SVG, "c.jpg": JPEG})
    backends.redirects["moved.jpg"] = f"{base}/cdn/c.jpg"  # same allowed host: followed
    _, page = await conversation(
        client,
        backends,
        ZALO_SENDER,
        {"kind": "image", "url": f"{base}/cdn/a.png"},
        {"kind": "file", "url": f"{base}/cdn/b.svg", "name": "b.svg"},
        {"kind": "image", "url": f"{base}/cdn/moved.jpg"},
    )
    first, moved = IMG_SRC.findall(page)
    resp = await client.get(first)
    assert resp.status == 200 and await resp.read() == PNG
    assert resp.headers["Content-Type"] == "image/png"  # the host said text/html
    assert_safe_headers(resp)
    assert f'href="{base}/cdn/a.png"' in page  # Zalo's own link stays listed as before

    svg_href = re.search(r'<a class="customer-file-link" href="([^"]+)"[^>]*>Khách gửi tệp: b\.svg</a>', page)
    assert svg_href
    svg = await client.get(svg_href.group(1))
    assert svg.headers["Content-Type"] == "application/octet-stream"  # never image/svg+xml inline
    assert svg.headers["Content-Disposition"].startswith("attachment")

    redirected = await client.get(moved)
    assert redirected.status == 200 and await redirected.read() == JPEG
    assert backends.fetched == ["a.png", "b.svg", "moved.jpg", "c.jpg"]


async def test_other_hosts_and_redirects_to_them_are_refused(setup):
    client, backends, _, base = await setup()
    port = base.rsplit(":", 1)[1]
    backends.files["x.jpg"] = JPEG
    backends.redirects["away.jpg"] = f"http://127.0.0.2:{port}/cdn/x.jpg"
    _, page = await conversation(
        client,
        backends,
        ZALO_SENDER,
        {"kind": "image", "url": "https://example.com/x.jpg"},
        {"kind": "image", "url": f"http://localhost:{port}/cdn/x.jpg"},
        {"kind": "image", "url": f"{base}/cdn/away.jpg"},
        {"kind": "image", "url": "http://169.254.169.254/latest/meta-data"},
    )
    srcs = IMG_SRC.findall(page)
    assert len(srcs) == 4
    for src in srcs:
        resp = await client.get(src)
        body = await resp.text()
        assert resp.status == 403, body
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "DESK_CUSTOMER_FILE_HOSTS" in body and "Không mở được tệp này" in body
    assert backends.fetched == ["away.jpg"]  # the redirect target was never asked


async def test_only_staff_and_only_files_of_that_conversation(setup):
    client, backends, telegram, _ = await setup()
    telegram.files["PHOTO-2"] = ("photos/file_2.jpg", JPEG)
    handoff_a, page_a = await conversation(
        client, backends, TG_SENDER, {"kind": "image", "file_id": "PHOTO-2"}
    )
    handoff_b, _ = await conversation(client, backends, "telegram:700100301")
    [src] = IMG_SRC.findall(page_a)
    ref = src.rsplit("/", 1)[1]
    # Another conversation's id with this file's ref: not in that tracker.
    resp = await client.get(f"/conversations/{handoff_b}/customer-files/{ref}")
    assert resp.status == 404 and "Không tìm thấy ảnh hay tệp này" in await resp.text()
    resp = await client.get(f"/conversations/999999/customer-files/{ref}")
    assert resp.status == 404 and "Không tìm thấy hội thoại" in await resp.text()
    resp = await client.get(f"/conversations/{handoff_a}/customer-files/{'0' * 32}")
    assert resp.status == 404
    resp = await client.get(f"/conversations/{handoff_a}/customer-files/not-a-ref")
    assert resp.status == 404 and "text/html" in resp.headers["Content-Type"]
    # Not logged in: the login page; nothing fetched.
    client.session.cookie_jar.clear()
    resp = await client.get(src, allow_redirects=False)
    assert resp.status in {302, 303} and resp.headers["Location"].startswith("/login")
    assert telegram.sent("getFile") == [] and telegram.downloads == []


async def test_an_oversized_file_is_refused_with_a_clear_message(setup):
    client, backends, telegram, base = await setup(DESK_CUSTOMER_FILE_MAX_MB="1")
    big = JPEG + b"\x00" * (1024 * 1024)
    backends.files["big.jpg"] = big
    telegram.files["BIG"] = ("photos/big.jpg", big)
    telegram.files["HUGE"] = ("photos/huge.jpg", JPEG)
    telegram.announced_size["BIG"] = 1000  # getFile understates it: the download is cut at the limit
    telegram.announced_size["HUGE"] = 30 * 1024 * 1024
    _, page = await conversation(
        client,
        backends,
        "zalo:6142000000778",
        {"kind": "image", "url": f"{base}/cdn/big.jpg"},
        {"kind": "image", "file_id": "BIG"},
        {"kind": "image", "file_id": "HUGE"},
    )
    for src in IMG_SRC.findall(page):
        resp = await client.get(src)
        body = await resp.text()
        assert resp.status == 413, body
        assert "quá lớn" in body and "1 MB" in body
    assert telegram.downloads == ["photos/big.jpg"]  # HUGE: refused on getFile's size, not downloaded


async def test_without_a_bot_token_the_page_says_the_file_cannot_be_opened(setup):
    client, backends, telegram, _ = await setup(token=None)
    telegram.files["PHOTO-3"] = ("photos/file_3.jpg", JPEG)
    _, page = await conversation(client, backends, TG_SENDER, {"kind": "image", "file_id": "PHOTO-3"})
    [src] = IMG_SRC.findall(page)
    resp = await client.get(src)
    body = await resp.text()
    assert resp.status == 503 and "Không mở được tệp này" in body and "TELEGRAM_BOT_TOKEN" in body
    assert telegram.sent("getFile") == []


async def test_failures_upstream_are_pages_not_500(setup):
    client, backends, telegram, base = await setup(DESK_CUSTOMER_FILE_TIMEOUT="1")
    backends.slow.add("slow.jpg")
    backends.files["slow.jpg"] = JPEG
    _, page = await conversation(
        client,
        backends,
        "zalo:6142000000779",
        {"kind": "image", "url": f"{base}/cdn/slow.jpg"},
        {"kind": "image", "url": f"{base}/cdn/missing.jpg"},
        {"kind": "image", "file_id": "EXPIRED"},
    )
    slow, missing, expired = IMG_SRC.findall(page)
    resp = await client.get(slow)
    assert resp.status == 504 and "quá lâu" in await resp.text()
    resp = await client.get(missing)
    assert resp.status == 404 and "không còn" in await resp.text()
    resp = await client.get(expired)
    assert resp.status == 404 and "không còn" in await resp.text()
    telegram.stop()  # the Bot API unreachable
    resp = await client.get(expired)
    assert resp.status == 502 and "Không tải được" in await resp.text()


async def test_a_name_resolving_to_a_private_address_is_refused_at_connection():
    settings = desk_settings_for_hosts("zdn.vn")

    class Inner:
        async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
            return [
                {"hostname": host, "host": "10.0.0.5", "port": port, "family": family, "proto": 0, "flags": 0}
            ]

        async def close(self) -> None:
            return None

    # Through aiohttp: an allowed name whose DNS answer is a loopback address is never connected to.
    original = cfv.DefaultResolver
    cfv.DefaultResolver = Inner  # type: ignore[assignment,misc]
    try:
        with pytest.raises(cfv.Refused) as refused:
            await cfv.fetch_url(settings, "https://photo.zdn.vn/x.jpg")
        assert refused.value.status == 403
    finally:
        cfv.DefaultResolver = original  # type: ignore[misc]
    resolver = cfv._CheckedResolver(settings)
    await resolver.close()
    resolver._inner = Inner()  # type: ignore[assignment]
    with pytest.raises(cfv.Refused):
        await resolver.resolve("photo.zdn.vn", 443)
    assert not cfv._address_allowed("127.0.0.1", settings)
    assert not cfv._address_allowed("::ffff:169.254.169.254", settings)
    assert cfv._address_allowed("8.8.8.8", settings)
    for url in ("https://photo.zdn.vn/a.jpg", "https://x.zadn.vn/b"):
        with pytest.raises(cfv.Refused):  # zadn.vn is not in this list
            cfv.check_url(cfv.URL(url.replace("zdn", "zdnx")), settings)
    cfv.check_url(cfv.URL("https://photo.zdn.vn/a.jpg"), settings)
    for url in (
        "http://photo.zdn.vn/a.jpg",
        "https://u:p@photo.zdn.vn/a",
        "https://evilzdn.vn/a",
        "ftp://zdn.vn/a",
    ):
        with pytest.raises(cfv.Refused):
            cfv.check_url(cfv.URL(url), settings)


def desk_settings_for_hosts(hosts: str) -> Settings:
    return Settings.from_env({"DESK_CUSTOMER_FILE_HOSTS": hosts})


def test_settings_are_validated():
    default = Settings.from_env({})
    assert default.customer_file_hosts == ("zdn.vn", "zadn.vn", "zalo.me")
    assert default.customer_file_max_mb == 10 and default.telegram_bot_token == ""
    assert TG_TOKEN not in repr(Settings.from_env({"TELEGRAM_BOT_TOKEN": TG_TOKEN}))
    assert Settings.from_env({"DESK_CUSTOMER_FILE_HOSTS": "zdn.vn, 127.0.0.1 [::1]"}).customer_file_hosts == (
        "zdn.vn",
        "127.0.0.1",
        "::1",
    )
    for env in (
        {"DESK_CUSTOMER_FILE_HOSTS": "https://zdn.vn"},
        {"DESK_CUSTOMER_FILE_HOSTS": "*.zdn.vn"},
        {"DESK_CUSTOMER_FILE_HOSTS": "vn"},
        {"DESK_CUSTOMER_FILE_MAX_MB": "0"},
        {"DESK_CUSTOMER_FILE_TIMEOUT": "abc"},
        {"TELEGRAM_BOT_TOKEN": "not-a-token"},
        {"TELEGRAM_API_BASE_URL": "ftp://x"},
    ):
        with pytest.raises(ConfigError) as err:
            Settings.from_env(env)
        assert "not-a-token" not in str(err.value)


def test_the_live_message_carries_the_reference_hash_not_a_way_to_fetch_anything():
    shown = message_from_event(user_event(TG_SENDER, {"kind": "image", "file_id": "PHOTO-1"}, time.time()))
    assert shown is not None and re.fullmatch(r"[0-9a-f]{32}", shown["customer_file"]["ref"])
    assert cfv.find_reference(
        [user_event(TG_SENDER, {"kind": "image", "file_id": "PHOTO-1"}, 1.0)], shown["customer_file"]["ref"]
    ) == {"kind": "image", "file_id": "PHOTO-1"}
    bad = message_from_event(user_event(TG_SENDER, {"kind": "image", "url": "javascript:alert(1)"}, 1.0))
    assert bad is not None and bad["customer_file"]["ref"] == ""
