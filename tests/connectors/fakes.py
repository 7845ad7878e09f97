"""Fake Zalo OA and Telegram Bot APIs: aiohttp servers on loopback that record every call and
can be told to answer errors. Each runs in its own thread and event loop, so sync tests, async
tests and a Rasa subprocess can all talk to it."""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devstack.processes import free_port


class _ThreadedServer:
    """Runs ``self.app`` on 127.0.0.1:<free port> in a background thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def build(self) -> web.Application:
        raise NotImplementedError

    def start(self) -> _ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.build(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ZaloCall:
    user_id: str
    message: dict[str, Any]
    access_token: str


@dataclass
class ZnsCall:
    """One ZNS template message as received (the body fields of the real API)."""

    phone: str
    template_id: str
    template_data: dict[str, Any]
    tracking_id: str
    access_token: str


@dataclass
class ZaloUpload:
    filename: str
    data: bytes
    content_type: str
    token: str


class FakeZaloApi(_ThreadedServer):
    """/v3.0/oa/message/cs, /v2.0/oa/upload/file (a file token per PDF; a file message must name a
    token it gave) and /v4/oa/access_token with rotating single-use refresh tokens."""

    def __init__(self, access_token: str, refresh_token: str, app_id: str, app_secret: str) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.valid_access = {access_token}
        self.valid_refresh = {refresh_token}
        self.sent: list[ZaloCall] = []
        self.rejected: list[dict[str, Any]] = []
        self.refresh_calls: list[dict[str, str]] = []
        self._errors: deque[int] = deque()
        self._http_errors = 0
        self.zns_sent: list[ZnsCall] = []
        self._zns_errors: deque[int] = deque()
        self.uploads: list[ZaloUpload] = []
        self._upload_errors: deque[int] = deque()

    def upload_fail_next(self, *codes: int) -> None:
        """The next uploads answer these `error` codes."""
        with self.lock:
            self._upload_errors.extend(codes)

    def files_to(self, user_id: str) -> list[ZaloUpload]:
        """The files sent to a user, in order (each a file message naming an uploaded token)."""
        with self.lock:
            by_token = {u.token: u for u in self.uploads}
            return [
                by_token[c.message["attachment"]["payload"]["token"]]
                for c in self.sent
                if c.user_id == user_id and (c.message.get("attachment") or {}).get("type") == "file"
            ]

    def zns_fail_next(self, *codes: int) -> None:
        """The next ZNS sends answer these `error` codes (e.g. -118: no Zalo account for the phone)."""
        with self.lock:
            self._zns_errors.extend(codes)

    def fail_next(self, *codes: int) -> None:
        """The next sends answer HTTP 200 with these `error` codes (one per send)."""
        with self.lock:
            self._errors.extend(codes)

    def fail_http_next(self, n: int) -> None:
        """The next n requests answer HTTP 503 (a network-level failure)."""
        with self.lock:
            self._http_errors += n

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.valid_access.clear()

    def texts_to(self, user_id: str) -> list[str]:
        with self.lock:
            return [c.message.get("text", "") for c in self.sent if c.user_id == user_id]

    def calls_to(self, user_id: str) -> list[ZaloCall]:
        with self.lock:
            return [c for c in self.sent if c.user_id == user_id]

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_post("/v2.0/oa/upload/file", self._upload)
        app.router.add_post("/v2.0/oa/upload/image", self._upload_image)
        app.router.add_post("/v4/oa/access_token", self._token)
        app.router.add_post("/message/template", self._zns)  # ZNS (business.openapi.zalo.me)
        return app

    async def _zns(self, request: web.Request) -> web.Response:
        token = request.headers.get("access_token", "")
        body = await request.json()
        with self.lock:
            if token not in self.valid_access:
                return web.json_response({"error": -124, "message": "Access token is invalid"})
            if self._zns_errors:
                code = self._zns_errors.popleft()
                return web.json_response({"error": code, "message": f"fake ZNS error {code}"})
            call = ZnsCall(
                str(body.get("phone", "")),
                str(body.get("template_id", "")),
                dict(body.get("template_data") or {}),
                str(body.get("tracking_id", "")),
                token,
            )
            self.zns_sent.append(call)
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {
                    "msg_id": secrets.token_hex(16),
                    "sent_time": str(int(time.time() * 1000)),
                    "quota": {"dailyQuota": "500", "remainingQuota": "499"},
                },
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        token = request.headers.get("access_token", "")
        post = await request.post()
        part = post.get("file")
        with self.lock:
            if token not in self.valid_access:
                return web.json_response({"error": -216, "message": "Access token is invalid"})
            if self._upload_errors:
                code = self._upload_errors.popleft()
                return web.json_response({"error": code, "message": f"fake upload error {code}"})
            if not isinstance(part, web.FileField):
                return web.json_response({"error": -201, "message": "file is invalid"})
            data = part.file.read()
            if len(data) > 5 * 1024 * 1024:
                return web.json_response({"error": -201, "message": "file size exceeds the limit"})
            upload = ZaloUpload(part.filename, data, part.content_type, "FT-" + secrets.token_hex(12))
            self.uploads.append(upload)
        return web.json_response({"error": 0, "message": "Success", "data": {"token": upload.token}})

    async def _upload_image(self, request: web.Request) -> web.Response:
        """upload/image: a JPEG or PNG of at most 1 MB; the answer's attachment_id names it."""
        token = request.headers.get("access_token", "")
        post = await request.post()
        part = post.get("file")
        with self.lock:
            if token not in self.valid_access:
                return web.json_response({"error": -216, "message": "Access token is invalid"})
            if self._upload_errors:
                code = self._upload_errors.popleft()
                return web.json_response({"error": code, "message": f"fake upload error {code}"})
            if not isinstance(part, web.FileField):
                return web.json_response({"error": -201, "message": "file is invalid"})
            data = part.file.read()
            if len(data) > 1024 * 1024 or not data.startswith((b"\xff\xd8\xff", b"\x89PNG")):
                return web.json_response({"error": -201, "message": "image is invalid"})
            upload = ZaloUpload(part.filename, data, part.content_type, "IMG-" + secrets.token_hex(12))
            self.uploads.append(upload)
        return web.json_response({"error": 0, "message": "Success", "data": {"attachment_id": upload.token}})

    def images_to(self, user_id: str) -> list[ZaloUpload]:
        """The uploaded images sent to a user (media messages naming an attachment id it gave)."""
        with self.lock:
            by_token = {u.token: u for u in self.uploads}
            return [
                by_token[e["attachment_id"]]
                for c in self.sent
                if c.user_id == user_id
                for e in ((c.message.get("attachment") or {}).get("payload") or {}).get("elements") or []
                if e.get("attachment_id") in by_token
            ]

    async def _send(self, request: web.Request) -> web.Response:
        with self.lock:
            if self._http_errors:
                self._http_errors -= 1
                return web.Response(status=503, text="unavailable")
        token = request.headers.get("access_token", "")
        body = await request.json()
        user_id = str(body.get("recipient", {}).get("user_id", ""))
        with self.lock:
            if token not in self.valid_access:
                self.rejected.append(body)
                return web.json_response({"error": -216, "message": "Access token is invalid"})
            if self._errors:
                code = self._errors.popleft()
                self.rejected.append(body)
                return web.json_response({"error": code, "message": f"fake error {code}"})
            attachment = body.get("message", {}).get("attachment") or {}
            if attachment.get("type") == "file" and attachment.get("payload", {}).get("token") not in {
                u.token for u in self.uploads
            }:
                self.rejected.append(body)
                return web.json_response({"error": -201, "message": "file token is invalid"})
            self.sent.append(ZaloCall(user_id, body.get("message", {}), token))
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {"message_id": secrets.token_hex(8), "user_id": user_id},
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        with self.lock:
            self.refresh_calls.append({k: str(v) for k, v in form.items()})
            ok = (
                request.headers.get("secret_key") == self.app_secret
                and form.get("app_id") == self.app_id
                and form.get("grant_type") == "refresh_token"
                and form.get("refresh_token") in self.valid_refresh
            )
            if not ok:
                return web.json_response({"error": -14014, "error_name": "Invalid refresh token"})
            self.valid_refresh.discard(str(form["refresh_token"]))  # single use
            access, refresh = "AT-" + secrets.token_hex(8), "RT-" + secrets.token_hex(8)
            self.valid_access = {access}
            self.valid_refresh.add(refresh)
        return web.json_response({"access_token": access, "refresh_token": refresh, "expires_in": "90000"})


@dataclass
class TgCall:
    method: str
    params: dict[str, Any]
    at: float = 0.0  # time.time() when it arrived


@dataclass
class _TgFailure:
    method: str
    code: int
    description: str
    retry_after: int | None = None


class FakeTelegramApi(_ThreadedServer):
    """A subset of the Bot API: getMe, sendMessage, sendDocument, sendPhoto, answerCallbackQuery,
    setWebhook, deleteWebhook, getWebhookInfo, getUpdates (served from `push_update`)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.calls: list[TgCall] = []
        self._failures: list[_TgFailure] = []
        self._ids = itertools.count(1000)
        self._updates: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self.send_delay = 0.0  # seconds before sendMessage answers (a slow API)

    def fail_next(
        self, method: str, code: int = 400, description: str = "Bad Request", retry_after: int | None = None
    ) -> None:
        with self.lock:
            self._failures.append(_TgFailure(method, code, description, retry_after))

    def push_update(self, update: dict[str, Any]) -> None:
        with self.lock:
            self._updates.append(update)

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[TgCall]:
        with self.lock:
            return [
                c
                for c in self.calls
                if (method is None or c.method == method)
                and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
            ]

    def texts_to(self, chat_id: int) -> list[str]:
        return [c.params.get("text", "") for c in self.sent("sendMessage", chat_id)]

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        raw = await request.post()
        params: dict[str, Any] = {}
        for k, v in raw.items():
            value = v if isinstance(v, str) else "<file>"
            try:
                params[k] = json.loads(value) if value[:1] in "[{" else value
            except ValueError:
                params[k] = value
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await self._params(request)
        with self.lock:
            failure = next((f for f in self._failures if f.method == method), None)
            if failure:
                self._failures.remove(failure)
            self.calls.append(TgCall(method, params, time.time()))
        if method == "sendMessage" and self.send_delay:
            await asyncio.sleep(self.send_delay)
        if failure:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": failure.code,
                "description": failure.description,
            }
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return web.json_response(body, status=failure.code)
        if method == "getUpdates":
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        return web.json_response({"ok": True, "result": self._result(method, params)})

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
        while True:
            with self.lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                batch = list(self._updates)
            if batch or time.monotonic() >= deadline:
                return batch
            await asyncio.sleep(0.05)

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", 0))
        return {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            **extra,
        }

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "CSKH", "username": "cskh_test_bot"}
        if method == "sendMessage":
            return self._message(params, text=params.get("text", ""))
        if method == "sendDocument":
            doc = {
                "file_id": "F" + secrets.token_hex(6),
                "file_unique_id": secrets.token_hex(4),
                "file_name": "doc.pdf",
            }
            return self._message(params, document=doc, caption=params.get("caption"))
        if method == "sendPhoto":
            photo = [{"file_id": "P1", "file_unique_id": "p1", "width": 1, "height": 1}]
            return self._message(params, photo=photo)
        if method == "setWebhook":
            self.webhook = params
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": 0,
            }
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        return True  # answerCallbackQuery and other boolean methods


class FileHost(_ThreadedServer):
    """Serves PDFs at given paths, as the signing service serves its document links."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._get)
        return app

    async def _get(self, request: web.Request) -> web.Response:
        data = self.files.get(request.path)
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="application/pdf")
