"""Attachments (issue 18): an agent sends the customer a PDF or an image.

The owner of a conversation posts the file's bytes (`POST /conversations/{id}/attachments`, body =
the file, header `X-CSRF-Token`, name in `X-File-Name` percent-encoded). The type is read from the
magic bytes (never the name): PDF (`%PDF-`, at most `MAX_BYTES["pdf"]`), JPEG or PNG (at most
`MAX_BYTES["image"]`: Zalo's limits). The file is kept in `desk_files` (by its SHA-256: every desk
process of a scaled topology serves it) and the customer's channel fetches it at
`{DESK_PUBLIC_FILES_URL}/files/{sha256}?exp=..&sig=..`, an HMAC of the desk secret that expires after
`FILE_URL_TTL`. A `bot` event goes to the tracker like a reply (`output_channel=latest`) with
`custom.documents` for a PDF or `image` for an image, so the channel sends it (Telegram
sendDocument/sendPhoto, Zalo upload); its metadata `desk_file` lets the transcript show the file to
staff through `/desk-files/{sha256}` (logged-in only, same origin: the CSP stays `img-src 'self'`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import sqlalchemy as sa
from aiohttp import web

from agent_desk import channel_window, db
from agent_desk.desk_texts import TEXTS
from agent_desk.handoffs import DeskError
from agent_desk.keys import DESK, SETTINGS
from agent_desk.request_helpers import error_response, handoff_id_of
from agent_desk.security import login_required
from common.rasa_client import RasaError

if TYPE_CHECKING:
    from agent_desk.config import Settings
    from agent_desk.desk import Desk

log = logging.getLogger(__name__)

MAX_BYTES = {"pdf": 5 * 1024 * 1024, "image": 1024 * 1024}  # Zalo: ZALO_FILE_MAX_MB, upload/image
FILE_URL_TTL = 3600  # seconds a signed link lets the channel fetch the file
SHA_RE = re.compile(r"^[0-9a-f]{64}$")

files = sa.Table(
    "desk_files",
    db.metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("mime", sa.String(40), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

sends = sa.Table(  # who sent which file to which conversation, when
    "desk_file_sends",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("handoff_id", sa.Integer, sa.ForeignKey("desk_handoffs.id"), nullable=False, index=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("desk_agents.id"), nullable=False),
    sa.Column("sha256", sa.String(64), sa.ForeignKey("desk_files.sha256"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


def sniff(data: bytes) -> tuple[str, str] | None:
    """(kind, mime) from the magic bytes: ("pdf", "application/pdf"), ("image", "image/jpeg"|"image/png")."""
    if data.startswith(b"%PDF-"):
        return "pdf", "application/pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    return None


EXTENSION = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def safe_name(raw: str, mime: str) -> str:
    """A short printable file name with the extension of its real type ("Hoá đơn.exe" → "Hoá đơn.pdf")."""
    name = unicodedata.normalize("NFC", unquote(raw or ""))
    name = re.sub(r"[\x00-\x1f\x7f/\\\"<>]", "", name).strip().strip(".")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem[:100].strip() or 'tep'}.{EXTENSION[mime]}"


def signature(secret: str, sha256: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"desk-file:{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()


def public_base(settings: Settings) -> str:
    return (
        os.environ.get("DESK_PUBLIC_FILES_URL", "").strip() or f"http://127.0.0.1:{settings.port}"
    ).rstrip("/")


def signed_url(settings: Settings, sha256: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + FILE_URL_TTL)
    sig = signature(settings.secret_key, sha256, expires)
    return f"{public_base(settings)}/files/{sha256}?exp={expires}&sig={sig}"


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if (request.content_length or 0) > limit:
        raise DeskError(_too_large(limit), 413)
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise DeskError(_too_large(limit), 413)
    return bytes(data)


def _too_large(limit: int) -> str:
    return TEXTS.get("attachment_too_large", limit_mb=limit // (1024 * 1024))


def bot_event(kind: str, name: str, url: str, sha256: str, size: int, agent: Any) -> dict[str, Any]:
    data: dict[str, Any] = (
        {"custom": {"documents": [{"title": name, "url": url}]}} if kind == "pdf" else {"image": url}
    )
    return {
        "event": "bot",
        "text": "",
        "data": data,
        "metadata": {
            "agent": agent.username,
            "agent_name": agent.display_name,
            "desk_file": {"sha256": sha256, "name": name, "kind": kind, "size": size},
        },
    }


async def store(desk: Desk, data: bytes, mime: str) -> str:
    sha = hashlib.sha256(data).hexdigest()
    async with desk.engine.begin() as conn:
        known = await conn.scalar(sa.select(files.c.sha256).where(files.c.sha256 == sha))
        if known is None:
            await conn.execute(
                files.insert().values(
                    sha256=sha, mime=mime, size=len(data), content=data, created_at=time.time()
                )
            )
    return sha


@login_required()
async def upload(request: web.Request) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    agent = request["agent"]
    handoff_id = handoff_id_of(request)
    try:
        handoff = await desk.owned(handoff_id, agent)
        refusal = await channel_window.reply_refusal(desk, handoff)
        if refusal:
            raise DeskError(refusal, 409)
        data = await _read_limited(request, max(MAX_BYTES.values()))
        found = sniff(data)
        if found is None:
            raise DeskError(TEXTS.get("attachment_bad_type"), 415)
        kind, mime = found
        if len(data) > MAX_BYTES[kind]:
            text = "attachment_image_too_large" if kind == "image" else "attachment_pdf_too_large"
            raise DeskError(TEXTS.get(text, limit_mb=MAX_BYTES[kind] // (1024 * 1024)), 413)
        name = safe_name(request.headers.get("X-File-Name", ""), mime)
        sha = await store(desk, data, mime)
        event = bot_event(kind, name, signed_url(desk.settings, sha), sha, len(data), agent)
        try:
            await desk.rasa.append_events(handoff.sender_id, [event])
        except RasaError as exc:
            raise DeskError(TEXTS.get("attachment_rasa_failed", error=exc), 502) from exc
    except DeskError as exc:
        return error_response(request, exc, back=f"/conversations/{handoff_id}")
    async with desk.engine.begin() as conn:
        await conn.execute(
            sends.insert().values(
                handoff_id=handoff.id,
                sender_id=handoff.sender_id,
                agent_id=agent.id,
                sha256=sha,
                name=name,
                created_at=time.time(),
            )
        )
    await desk.touch(handoff.id, agent)
    log.info("handoff %s: %s file of %d bytes sent by %s", handoff.id, kind, len(data), agent.username)
    return web.json_response({"status": "sent", "kind": kind, "name": name, "sha256": sha})


async def _file_response(request: web.Request, sha: str) -> web.StreamResponse:
    desk: Desk = request.app[DESK]
    async with desk.engine.connect() as conn:
        row = (
            await conn.execute(sa.select(files.c.mime, files.c.content).where(files.c.sha256 == sha))
        ).first()
    if row is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=row.content,
        content_type=row.mime,
        headers={"Cache-Control": "private, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def public_file(request: web.Request) -> web.StreamResponse:
    """The channel's fetch: only with a valid, unexpired signature (no session)."""
    sha = request.match_info["sha"]
    exp_raw = request.query.get("exp", "")
    sig = request.query.get("sig", "")
    if not SHA_RE.match(sha):
        raise web.HTTPNotFound()
    if not (exp_raw.isascii() and exp_raw.isdigit() and len(exp_raw) <= 12):
        raise web.HTTPForbidden(text=TEXTS.get("file_link_invalid"))
    settings: Settings = request.app[SETTINGS]
    expected = signature(settings.secret_key, sha, int(exp_raw))
    if not hmac.compare_digest(sig, expected):
        raise web.HTTPForbidden(text=TEXTS.get("file_link_invalid"))
    if int(exp_raw) < time.time():
        raise web.HTTPGone(text=TEXTS.get("file_link_expired"))
    return await _file_response(request, sha)


@login_required()
async def staff_file(request: web.Request) -> web.StreamResponse:
    """A file the desk sent, for the transcript (staff only)."""
    sha = request.match_info["sha"]
    if not SHA_RE.match(sha):
        raise web.HTTPNotFound()
    return await _file_response(request, sha)


def setup_routes(app: web.Application) -> None:
    app.router.add_post(r"/conversations/{id:[0-9]+}/attachments", upload)
    app.router.add_get(r"/files/{sha:[0-9a-f]{64}}", public_file)
    app.router.add_get(r"/desk-files/{sha:[0-9a-f]{64}}", staff_file)
