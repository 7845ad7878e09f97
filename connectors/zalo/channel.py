"""Rasa input/output channel for a Zalo Official Account (webhook /webhooks/zalo/webhook)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from common import metrics, request_id
from common.shared_contact import SHARE_CONTACT_TEXT, shared_contact
from connectors.common import canned, customer_files, outgoing
from connectors.common.bot_failures import hand_to_bot
from connectors.common.failures import record_failure
from connectors.common.files import FetchError, FileFetcher, pdf_filename
from connectors.common.masking import mask_id
from connectors.common.senders import ZALO_SENDER_PREFIX
from connectors.common.webhook import WebhookInput
from connectors.zalo import events, messages, signature
from connectors.zalo.api import ZaloApi, ZaloSendError
from connectors.zalo.config import ZaloSettings

logger = logging.getLogger(__name__)

CHANNEL = "zalo"
SENDER_PREFIX = ZALO_SENDER_PREFIX
MAX_BODY = 64 * 1024  # a webhook event is a few hundred bytes
DEDUPE_TTL = 2 * 3600  # Zalo retries for up to about an hour
FAILURE_REASONS = {"window": "outside_window", "rate": "rate_limited", "token": "token_invalid"}
# A signed event whose body `timestamp` (epoch ms) is older than this, or further ahead than the
# skew, is acknowledged and dropped: a captured delivery replayed later never reaches the bot.
MAX_EVENT_AGE = 10 * 60
MAX_CLOCK_SKEW = 2 * 60


IMAGE_MAX_BYTES = 1024 * 1024  # Zalo's upload/image limit


def event_time(body: dict[str, Any]) -> float | None:
    """The event's `timestamp` in epoch seconds; None unless it is ASCII digits (or a JSON integer)."""
    raw = body.get("timestamp")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw / 1000
    if isinstance(raw, str) and 0 < len(raw) <= 16 and raw.isascii() and raw.isdigit():
        return int(raw) / 1000  # isascii first: "²".isdigit() is True and int("²") raises
    return None


def sender_id_for(user_id: str) -> str:
    return SENDER_PREFIX + user_id


def user_id_of(sender_id: str) -> str:
    """The Zalo user id of a conversation (accepts the raw id, for pushes by older callers)."""
    return sender_id[len(SENDER_PREFIX) :] if sender_id.startswith(SENDER_PREFIX) else sender_id


class ZaloOutput(OutputChannel):
    def __init__(self, api: ZaloApi, files: FileFetcher | None = None) -> None:
        self._api = api
        self._files = files  # None: documents go as links only

    @classmethod
    def name(cls) -> str:
        return CHANNEL

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        reply = outgoing.from_rasa(message)
        if reply.empty:
            return
        settings = self._api.settings
        files = reply.files if self._files is not None and settings.send_files else []
        # An image is uploaded (upload/image) and sent by its attachment id; if it cannot be fetched
        # or uploaded, Zalo is given its URL instead.
        uploaded = await self._upload_image(reply.image) if reply.image and self._files is not None else None
        if uploaded is not None:
            reply = replace(reply, image=None)
        # The text and its buttons first; each document then follows as a file, or as its link when
        # it cannot be sent as one (a PDF link button already is the link: nothing more to send).
        bodies = messages.build(
            replace(reply, documents=[]) if files else reply,
            settings.text_limit,
            settings.max_buttons,
            settings.request_info_image_url,
        )
        if uploaded is not None:
            bodies.append(messages.uploaded_image(uploaded))
        user_id = user_id_of(recipient_id)
        if await self._send_all(recipient_id, user_id, message, bodies) and files:
            late: list[dict[str, Any]] = []
            unsent: list[outgoing.Document] = []
            for doc in files:
                token = await self._upload(doc)
                if token:
                    late.append({"attachment": {"type": "file", "payload": {"token": token}}})
                elif doc in reply.documents:
                    unsent.append(doc)
            if unsent:
                late += messages.build(
                    outgoing.Reply(documents=unsent), settings.text_limit, settings.max_buttons
                )
            await self._send_all(recipient_id, user_id, message, late)

    async def _upload_image(self, url: str) -> str | None:
        """The Zalo attachment id of the image at `url`, or None (then Zalo gets the URL)."""
        assert self._files is not None
        try:
            data, mime = await self._files.image(url, IMAGE_MAX_BYTES)
            name = "anh.png" if mime == "image/png" else "anh.jpg"
            return await self._api.upload_image(name, data, mime)
        except FetchError as exc:
            logger.info("Zalo: image not uploaded (%s); its URL is sent", exc.reason)
        except ZaloSendError as exc:
            logger.info("Zalo: image upload refused (%s %s); its URL is sent", exc.kind, exc.code)
        return None

    async def _upload(self, doc: outgoing.Document) -> str | None:
        """The Zalo file token of the document, or None (then its link is what the customer gets)."""
        assert self._files is not None
        try:
            data = await self._files.pdf(doc.url)
            return await self._api.upload_file(pdf_filename(doc.title), data)
        except FetchError as exc:
            logger.info("Zalo: document not sent as a file (%s); its link is sent", exc.reason)
        except ZaloSendError as exc:
            logger.info("Zalo: upload refused (%s %s); the link is sent", exc.kind, exc.code)
        return None

    async def _send_all(
        self, recipient_id: str, user_id: str, message: dict[str, Any], bodies: list[dict[str, Any]]
    ) -> bool:
        """Send the bodies in order; on a refusal record the whole reply and return False."""
        for sent, body in enumerate(bodies):
            try:
                await self._api.send_message(user_id, body)
            except ZaloSendError as exc:
                metrics.CHANNEL_SEND_ERRORS.labels(CHANNEL).inc()
                # Keep the whole reply (not only the failing part) so staff can resend it.
                kept = {
                    k: v
                    for k, v in message.items()
                    if k in ("text", "buttons", "custom", "attachment", "image")
                }
                record_failure(
                    CHANNEL,
                    recipient_id,
                    FAILURE_REASONS.get(exc.kind, exc.kind),
                    kept,
                    exc.code,
                    f"{exc.message}; {sent} of {len(bodies)} parts delivered",
                )
                return False
        return True

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


class ZaloInput(WebhookInput[ZaloSettings]):
    """Verifies X-ZEvent-Signature, acknowledges at once and runs the bot in the background."""

    channel = CHANNEL
    dedupe_ttl = DEDUPE_TTL
    required_env = "ZALO_APP_ID/ZALO_OA_SECRET_KEY/ZALO_ACCESS_TOKEN"

    def __init__(
        self,
        settings: ZaloSettings | None,
        api: ZaloApi | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings)
        self.api = api or (ZaloApi(settings) if settings else None)
        self.files = FileFetcher(settings.file_max_bytes) if settings else None
        self.clock = clock
        self.stale_events = 0  # signed events refused as too old (or from the future), since start

    @classmethod
    def settings_from_env(cls) -> ZaloSettings | None:
        return ZaloSettings.from_env()

    def get_output_channel(self) -> OutputChannel | None:
        return ZaloOutput(self.api, self.files) if self.api else None

    def add_routes(self, bp: Blueprint) -> None:
        @bp.route("/webhook", methods=["GET"])
        async def probe(request: Request) -> HTTPResponse:
            return response.text("ok")

    async def close_client(self) -> None:
        if self.api:
            await self.api.close()
        if self.files:
            await self.files.close()

    async def handle_webhook(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        if self.settings is None:
            logger.warning("Zalo webhook called but the channel is disabled (ZALO_* unset)")
            return response.json({"error": "channel_disabled"}, status=503)
        raw = request.body or b""
        if len(raw) > MAX_BODY:
            return response.json({"error": "body_too_large"}, status=413)
        header = request.headers.get(signature.HEADER)
        if not header:
            if raw.strip() in (b"", b"{}"):
                return response.json({"status": "ok"})  # Zalo's unsigned probe when the URL is saved
            return response.json({"error": "missing_signature"}, status=403)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            return response.json({"error": "malformed_json"}, status=400)
        if not isinstance(body, dict):
            return response.json({"error": "malformed_event"}, status=400)
        stamps = [str(body.get("timestamp", ""))]
        header_ts = request.headers.get("X-ZEvent-Timestamp")
        if header_ts:
            stamps.append(header_ts.strip())
        if not signature.verify(header, self.settings.app_id, raw, stamps, self.settings.oa_secret_key):
            logger.warning("Zalo webhook with a wrong signature refused")
            return response.json({"error": "bad_signature"}, status=403)
        at = event_time(body)
        if at is None:
            return response.json({"error": "malformed_event", "detail": "timestamp"}, status=400)
        age = self.clock() - at
        if not -MAX_CLOCK_SKEW <= age <= MAX_EVENT_AGE:
            # 200, not 4xx: Zalo redelivers what it does not get a 2xx for, and a replay is not worth it.
            self.stale_events += 1
            logger.warning(
                "Zalo %s event refused: timestamp %+d s from now (%d stale events since start)",
                str(body.get("event_name"))[:40],
                -age,
                self.stale_events,
            )
            return response.json({"status": "stale"})
        try:
            event = events.classify(body)
        except events.BadEvent as exc:
            logger.warning("Zalo %s event refused: %s", body.get("event_name"), exc)
            return response.json({"error": "malformed_event", "detail": str(exc)}, status=400)
        if event.kind == "ignore":
            return response.json({"status": "ignored"})
        sender = sender_id_for(event.user_id)
        with request_id.bound(request_id.accept(request.headers.get(request_id.HEADER))):
            return self.accept(  # the background task copies the bound id
                request,
                sender,
                event.dedupe_key,
                f"Zalo delivery {event.event_name}",
                lambda app: self._process(event, sender, on_new_message, app),
            )

    async def _process(
        self,
        event: events.ZaloEvent,
        sender: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        app: Any,
    ) -> None:
        assert self.api is not None
        output = ZaloOutput(self.api, self.files)
        metadata: dict[str, Any] = {
            "zalo": {"event": event.event_name},
            # Bound by handle_webhook (this task copied it): Rasa hands it on to the action server.
            request_id.METADATA_KEY: request_id.current() or request_id.new_id(),
        }
        if event.kind == "text":
            text = event.text
        elif event.kind == "follow":
            text = "/greet"
        elif event.kind == "contact":
            # Zalo lets the customer edit the number in its form: never the account's own number.
            text = SHARE_CONTACT_TEXT
            metadata.update(shared_contact(event.phone, "zalo_user_info", own_number=False))
        elif event.file and await customer_files.bot_paused(app, sender):
            # An agent has the conversation: the file goes into it (the paused bot does not answer).
            text = canned.FALLBACK_INTENT_TEXT
            metadata[customer_files.METADATA_KEY] = event.file
        else:
            if await self.answered_unsupported(app, output, sender):
                return
            text = canned.FALLBACK_INTENT_TEXT
            metadata["unsupported_content"] = event.content_type
        logger.debug("Zalo %s from %s", event.event_name, mask_id(sender))
        message = UserMessage(
            text,
            output,
            sender,
            input_channel=CHANNEL,
            message_id=event.dedupe_key if event.kind in ("text", "contact") else None,
            metadata=metadata,
        )
        with metrics.bot_turn(CHANNEL):
            await hand_to_bot(on_new_message, message, CHANNEL, text, app, self.turns)
