"""Customers' images and files, opened by staff on the desk.

While an agent has a conversation, a customer's Zalo image or file and Telegram photo or document
reach the tracker with a `customer_file` reference in the user event's metadata
(connectors/common/customer_files.py): Zalo gives a URL on its CDN, Telegram a `file_id`. The
transcript (agent_desk/transcript.py) names each one by `ref`, a hash of that reference, and shows
it through `GET /conversations/{id}/customer-files/{ref}`, served here to logged-in staff (who may
open every conversation, as its page). The route never takes a URL: it reads the conversation's
tracker and serves the file whose reference hashes to `ref`, so nobody can make the desk fetch
anything else.

- Telegram: the Bot API's `getFile` resolves the file_id, then `file/bot<token>/<file_path>` is
  downloaded (TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL). No token: a page says the file cannot be
  opened.
- Zalo: the URL is fetched only from the hosts of DESK_CUSTOMER_FILE_HOSTS (a host or its
  subdomains; default Zalo's CDN), over https (http only for loopback test hosts), and never from
  a private, loopback or reserved address unless that address itself is listed (checked on the
  addresses actually connected to, so DNS cannot point an allowed name inside); redirects are
  followed by hand, at most 3, each checked the same way.
- Both: at most DESK_CUSTOMER_FILE_MAX_MB (the body is not read further), DESK_CUSTOMER_FILE_TIMEOUT
  seconds. The type is read from the bytes: JPEG, PNG, GIF, WebP inline as images, PDF as a PDF,
  anything else as `application/octet-stream` to download. `Cache-Control: no-store`,
  `X-Content-Type-Options: nosniff`. Failures are the desk's Vietnamese error pages.

Nothing here logs the token, a URL or a file's content: failures are logged with the handoff and
the exception's type only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError
from agent_desk.keys import DESK, SETTINGS
from agent_desk.request_helpers import error_response, handoff_id_of
from agent_desk.security import login_required
from agent_desk.transcript import _customer_file
from common.rasa_client import RasaError

if TYPE_CHECKING:
    from aiohttp.abc import ResolveResult  # aiohttp 3.10+ (the services' environment)

    from agent_desk.config import Settings
    from agent_desk.desk import Desk

log = logging.getLogger(__name__)

REF_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
REDIRECTS = {301, 302, 303, 307, 308}
# What Telegram's getFile gives: a relative path such as "photos/file_12.jpg".
FILE_PATH_RE = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_.-]+)*$")

# The pages' texts, from texts/desk.yml.
TELEGRAM_OFF = TEXTS.get("customer_file_telegram_off")
HOST_REFUSED = TEXTS.get("customer_file_host_refused")
UNAVAILABLE = TEXTS.get("customer_file_unavailable")
TIMEOUT = TEXTS.get("customer_file_timeout")
NOT_IN_CONVERSATION = TEXTS.get("customer_file_not_in_conversation")
GONE = TEXTS.get("customer_file_gone")


class Refused(Exception):
    """Why a customer's file is not served: a Vietnamese message and the page's status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def too_large(settings: Settings) -> Refused:
    return Refused(TEXTS.get("customer_file_too_large", limit_mb=settings.customer_file_max_mb), 413)


# ---------------------------------------------------------------------- the content's type
def sniff(data: bytes) -> str | None:
    """The MIME type shown inline, read from the magic bytes; None: a download."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
}


def _disposition(kind: str, name: str, mime: str | None) -> str:
    """Inline for images and PDFs, attachment for the rest; the (masked) name, ASCII and UTF-8."""
    name = re.sub(r"[\x00-\x1f\x7f/\\\"]", "", name).strip().strip(".")[:120]
    if not name:
        name = ("anh-khach-gui" if kind == "image" else "tep-khach-gui") + (
            f".{EXTENSIONS[mime]}" if mime else ""
        )
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "tep"
    return (
        f"{'inline' if mime else 'attachment'}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
    )


SANDBOX = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def file_response(data: bytes, kind: str, name: str) -> web.Response:
    mime = sniff(data)
    return web.Response(
        body=data,
        content_type=mime or "application/octet-stream",
        headers={
            "Content-Disposition": _disposition(kind, name, mime),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            # A customer's PDF opened on the desk's own origin runs nothing there (no scripts, forms,
            # same-origin access).
            "Content-Security-Policy": SANDBOX,
        },
    )


# ---------------------------------------------------------------------- fetching, bounded
async def _read_limited(response: aiohttp.ClientResponse, settings: Settings) -> bytes:
    limit = settings.customer_file_max_mb * 1024 * 1024
    if (response.content_length or 0) > limit:
        raise too_large(settings)
    data = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large(settings)
    return bytes(data)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _address_allowed(value: str, settings: Settings) -> bool:
    """A public address, or one the operator listed itself (e.g. a test's 127.0.0.1)."""
    ip = _ip(value)
    if ip is None:
        return False
    listed = {_ip(h) for h in settings.customer_file_hosts} - {None}
    return ip in listed or (ip.is_global and not ip.is_multicast)


class _CheckedResolver(AbstractResolver):
    """DNS answers are checked where they are used: an allowed name resolving to a private address
    is refused at connection time (no window between a check and the connection)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not found or not all(_address_allowed(str(i["host"]), self._settings) for i in found):
            raise Refused(HOST_REFUSED, 403)
        return found

    async def close(self) -> None:
        await self._inner.close()


def _host_allowed(host: str, settings: Settings) -> bool:
    host = host.lower().rstrip(".")
    ip = _ip(host)
    if ip is not None:  # an address only when listed itself
        return any(_ip(h) == ip for h in settings.customer_file_hosts)
    return any(host == h or host.endswith("." + h) for h in settings.customer_file_hosts if _ip(h) is None)


def check_url(url: URL, settings: Settings) -> None:
    """An allowed address for a customer's Zalo file, else Refused (403)."""
    host = url.host or ""
    if (
        url.scheme not in {"http", "https"}
        or not host
        or url.user is not None
        or url.password is not None
        or not _host_allowed(host, settings)
        or (url.scheme == "http" and host.lower() not in settings.insecure_hosts)
    ):
        raise Refused(HOST_REFUSED, 403)
    if _ip(host) is not None and not _address_allowed(host, settings):
        raise Refused(HOST_REFUSED, 403)


@asynccontextmanager
async def _session(settings: Settings, checked: bool) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(
        resolver=_CheckedResolver(settings) if checked else None, use_dns_cache=False, limit=4
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.customer_file_timeout),
        trust_env=False,  # no proxy from the environment: the checks are on the real addresses
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        yield session


async def fetch_url(settings: Settings, raw_url: str) -> bytes:
    """A Zalo file: its URL on an allowed host (redirects followed by hand, each checked)."""
    try:
        url = URL(raw_url)
    except (ValueError, TypeError):
        raise Refused(HOST_REFUSED, 403) from None
    async with _session(settings, checked=True) as session:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, settings)
            async with session.get(url, allow_redirects=False) as response:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location", "")
                    if not location:
                        raise Refused(UNAVAILABLE, 502)
                    url = response.url.join(URL(location))
                    continue
                if response.status in {403, 404, 410}:
                    raise Refused(GONE, 404)
                if response.status != 200:
                    raise Refused(UNAVAILABLE, 502)
                return await _read_limited(response, settings)
    raise Refused(UNAVAILABLE, 502)  # too many redirects


async def fetch_telegram(settings: Settings, file_id: str) -> bytes:
    """A Telegram file: getFile, then the download (the token is in both URLs: never logged)."""
    if not settings.telegram_bot_token:
        raise Refused(TELEGRAM_OFF, 503)
    base = settings.telegram_api_base_url.rstrip("/")
    token = settings.telegram_bot_token
    limit = settings.customer_file_max_mb * 1024 * 1024
    async with _session(settings, checked=False) as session:
        async with session.post(f"{base}/bot{token}/getFile", json={"file_id": file_id}) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                raise Refused(UNAVAILABLE, 502) from None
        if not isinstance(body, dict):
            raise Refused(UNAVAILABLE, 502)
        if not body.get("ok"):
            description = str(body.get("description") or "").lower()
            if "too big" in description:  # the Bot API downloads files of at most 20 MB
                raise too_large(settings)
            if body.get("error_code") in {400, 404}:  # an unknown or expired file_id
                raise Refused(GONE, 404)
            raise Refused(UNAVAILABLE, 502)
        found = body.get("result")
        result: dict[str, Any] = found if isinstance(found, dict) else {}
        size = result.get("file_size")
        if isinstance(size, int) and size > limit:
            raise too_large(settings)
        path = result.get("file_path")
        if not isinstance(path, str) or len(path) > 300 or ".." in path or not FILE_PATH_RE.match(path):
            raise Refused(UNAVAILABLE, 502)
        async with session.get(f"{base}/file/bot{token}/{path}", allow_redirects=False) as response:
            if response.status in {403, 404, 410}:
                raise Refused(GONE, 404)
            if response.status != 200:
                raise Refused(UNAVAILABLE, 502)
            return await _read_limited(response, settings)


# ---------------------------------------------------------------------- the route
def find_reference(events: list[dict[str, Any]], ref: str) -> dict[str, Any] | None:
    """The `customer_file` reference of a customer's message whose `ref` is `ref`, or None."""
    for event in reversed(events):
        if not isinstance(event, dict) or event.get("event") != "user":
            continue
        metadata = event.get("metadata")
        raw = metadata.get("customer_file") if isinstance(metadata, dict) else None
        shown = _customer_file(raw)
        if shown is not None and shown["ref"] == ref and isinstance(raw, dict):
            return raw
    return None


async def _fetch(settings: Settings, raw: dict[str, Any]) -> bytes:
    file_id = raw.get("file_id")
    if isinstance(file_id, str) and file_id:
        return await fetch_telegram(settings, file_id)
    return await fetch_url(settings, str(raw.get("url") or ""))


@login_required()
async def customer_file(request: web.Request) -> web.StreamResponse:
    """A customer's image or file of a conversation (staff, as the conversation page)."""
    desk: Desk = request.app[DESK]
    settings: Settings = request.app[SETTINGS]
    handoff_id = handoff_id_of(request)
    ref = request.match_info["ref"]
    back = f"/conversations/{handoff_id}"
    handoff = await desk.get(handoff_id)
    if handoff is None:
        raise web.HTTPNotFound(text=TEXTS.get("not_found"))
    if not REF_RE.match(ref):
        raise web.HTTPNotFound(text=NOT_IN_CONVERSATION)
    try:
        try:
            tracker = await desk.rasa.tracker(handoff.sender_id)
        except RasaError:
            raise Refused(TEXTS.get("customer_file_history_failed"), 502) from None
        raw = find_reference(tracker.get("events") or [], ref)
        if raw is None:
            raise Refused(NOT_IN_CONVERSATION, 404)
        try:
            data = await _fetch(settings, raw)
        except asyncio.TimeoutError:
            log.warning("customer file of handoff %s: timed out", handoff.id)
            raise Refused(TIMEOUT, 504) from None
        except aiohttp.ClientError as exc:
            log.warning("customer file of handoff %s: %s", handoff.id, type(exc).__name__)
            raise Refused(UNAVAILABLE, 502) from None
    except Refused as exc:
        log.info("customer file of handoff %s refused (%s)", handoff.id, exc.status)
        return error_response(request, DeskError(exc.message, exc.status), back=back)
    shown = _customer_file(raw) or {}
    log.info(
        "customer file of handoff %s: %d bytes shown to %s", handoff.id, len(data), request["agent"].username
    )
    return file_response(data, shown.get("kind", "file"), shown.get("name", ""))


def setup_routes(app: web.Application) -> None:
    app.router.add_get(r"/conversations/{id:[0-9]+}/customer-files/{ref}", customer_file)
