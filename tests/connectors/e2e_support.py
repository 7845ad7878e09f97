"""End-to-end support: a private assistant stack (signing service, action server, real Rasa with
the trained model) whose Zalo and Telegram channels point at fake platform APIs, plus
"customers" that talk to it through each platform's webhook exactly as Zalo/Telegram would."""

from __future__ import annotations

import html
import json
import re
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import processes
from tests.conftest import Stack
from tests.connectors.conftest import TG_SECRET, TG_TOKEN, ZALO_APP_ID, ZALO_APP_SECRET, ZALO_OA_SECRET
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi
from tests.connectors.tg_helpers import callback_update, contact_update, next_update_id, text_update
from tests.connectors.zalo_helpers import event, signed

SHARED_PROCS = ("signing-service", "action-server", "rasa")


class ChannelStack:
    """Fakes + a Stack of its own; one is shared by the channel modules (tests/connectors/conftest.py),
    each of which gets its own signing database and outbox from fresh_signing() (the journey signs)."""

    def __init__(self, root: Path, model: Path) -> None:
        self.zalo = FakeZaloApi("AT-e2e", "RT-e2e", ZALO_APP_ID, ZALO_APP_SECRET).start()
        self.telegram = FakeTelegramApi(TG_TOKEN).start()
        self.stack = Stack(root)
        self.failures = root / "channel_failures.jsonl"
        self.token_store = root / "zalo_tokens.json"
        self.stack.env.update(
            {
                "ZALO_APP_ID": ZALO_APP_ID,
                "ZALO_OA_SECRET_KEY": ZALO_OA_SECRET,
                "ZALO_ACCESS_TOKEN": "AT-e2e",
                "ZALO_REFRESH_TOKEN": "RT-e2e",
                "ZALO_APP_SECRET": ZALO_APP_SECRET,
                "ZALO_API_BASE_URL": self.zalo.url,
                "ZALO_OAUTH_BASE_URL": self.zalo.url,
                "ZALO_TOKEN_STORE_PATH": str(self.token_store),
                "TELEGRAM_BOT_TOKEN": TG_TOKEN,
                "TELEGRAM_SECRET_TOKEN": TG_SECRET,
                "TELEGRAM_API_BASE_URL": self.telegram.url,
                "CHANNEL_FAILURES_PATH": str(self.failures),
            }
        )
        self.model = model
        self._base_env = dict(self.stack.env)  # what fresh_signing() starts from

    def start(self, rasa_timeout: float = 600) -> ChannelStack:  # model load under load
        log = self.stack.root / "log"
        s = self.stack
        try:
            s.start(processes.signing_service(s.ports, s.env, log))
            s.start(processes.action_server(s.ports, s.env, log))
            # One worker, as the session's rasa_stack (tests/conftest.py); the fuzz runs two.
            s.start(processes.rasa_server(s.ports, s.env, log, self.model, workers=1), rasa_timeout)
        except Exception:
            self.stop()
            raise
        self._base_env = dict(s.env)
        return self

    def fresh_signing(self, root: Path, extra_env: dict[str, str] | None = None) -> ChannelStack:
        """The signing service restarted on a new database and outbox in `root` (same port), with
        `extra_env` for it and for what the caller starts next; Rasa and the action server keep
        running. A module that signs the demo customer's documents gets them unsigned again without
        paying for another Rasa start (its conversations have new sender ids anyway)."""
        s = self.stack
        old = s.procs.pop("signing-service", None)
        if old is not None:
            old.stop()
        s.root = root
        s.outbox = root / "outbox" / "messages.jsonl"
        s.env = {
            **self._base_env,
            "DATABASE_URL": f"sqlite:///{root / 'signing.db'}",
            "OUTBOX_PATH": str(s.outbox),
            "SIGNING_VAR_DIR": str(root),
            **(extra_env or {}),
        }
        s.start(processes.signing_service(s.ports, s.env, root / "log"))
        return self

    def stop_extra(self) -> None:
        """Stop what a module started besides the shared signing service, action server and Rasa."""
        for name in [n for n in self.stack.procs if n not in SHARED_PROCS]:
            self.stack.procs.pop(name).stop()

    def stop(self) -> None:
        self.stack.stop()
        self.zalo.stop()
        self.telegram.stop()

    @property
    def rasa(self) -> str:
        return self.stack.rasa_url

    def failure_records(self) -> list[dict[str, Any]]:
        if not self.failures.exists():
            return []
        return [json.loads(line) for line in self.failures.read_text().splitlines()]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback test servers)
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class BotReply:
    text: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)  # {"title", "payload"|"url"}
    document: str | None = None  # URL of a file sent with sendDocument, or zalo-file:<upload token>


class Customer:
    """A customer on one platform: send text, tap buttons, read the bot's replies."""

    channel = ""

    def __init__(self, cs: ChannelStack) -> None:
        self.cs = cs
        self._seen = 0
        self.transcript: list[str] = []

    @property
    def sender_id(self) -> str:
        raise NotImplementedError

    def say(self, text: str) -> None:
        raise NotImplementedError

    def tap(self, button: dict[str, str]) -> None:
        raise NotImplementedError

    def share_phone(self, phone: str) -> None:
        """Tap the platform's own "share my phone number" (Telegram) / user-info form (Zalo)."""
        raise NotImplementedError

    def _all_replies(self) -> list[BotReply]:
        raise NotImplementedError

    def replies(self, timeout: float = 60.0, quiet: float = 2.0) -> list[BotReply]:
        """New bot messages since the last call, once the bot has been quiet for ``quiet`` s."""
        deadline = time.monotonic() + timeout
        count, changed = self._seen, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self._all_replies())
            if now != count:
                count, changed = now, time.monotonic()
            elif now > self._seen and time.monotonic() - changed >= quiet:
                break
            time.sleep(0.1)
        new = self._all_replies()[self._seen :]
        self._seen += len(new)
        self.transcript += [f"bot: {r.text[:200]} {[b.get('title') for b in r.buttons]}" for r in new]
        return new


class ZaloCustomer(Customer):
    channel = "zalo"

    def __init__(self, cs: ChannelStack) -> None:
        super().__init__(cs)
        self.user_id = str(6142000000000 + uuid.uuid4().int % 10**9)

    @property
    def sender_id(self) -> str:
        return f"zalo:{self.user_id}"

    def say(self, text: str) -> None:
        self.transcript.append(f"customer: {text}")
        raw, headers = signed(event("user_send_text", self.user_id, text), ZALO_APP_ID, ZALO_OA_SECRET)
        status, body = http("POST", f"{self.cs.rasa}/webhooks/zalo/webhook", raw, headers)
        assert status == 200, body

    def tap(self, button: dict[str, str]) -> None:
        # oa.query.hide: Zalo sends the payload back as a user_send_text.
        self.say(button["payload"])

    def share_phone(self, phone: str) -> None:
        self.transcript.append(f"customer submits the info form with {phone}")
        body = event("user_submit_info", self.user_id)
        body["info"] = {
            "name": "Nguyễn Văn An",
            "phone": phone,
            "address": "",
            "city": "",
            "district": "",
            "ward": "",
        }
        raw, headers = signed(body, ZALO_APP_ID, ZALO_OA_SECRET)
        status, answer = http("POST", f"{self.cs.rasa}/webhooks/zalo/webhook", raw, headers)
        assert status == 200, answer

    def asked_for_info(self) -> bool:
        """The OA sent its request-user-info card (the bot's "share my phone" button)."""
        return any(
            call.message.get("attachment", {}).get("payload", {}).get("template_type") == "request_user_info"
            for call in self.cs.zalo.calls_to(self.user_id)
        )

    def _all_replies(self) -> list[BotReply]:
        out = []
        for call in self.cs.zalo.calls_to(self.user_id):
            attachment = call.message.get("attachment") or {}
            if attachment.get("type") == "file":  # a file message: the token of an upload
                out.append(BotReply("", [], "zalo-file:" + attachment["payload"]["token"]))
                continue
            buttons = []
            for b in call.message.get("attachment", {}).get("payload", {}).get("buttons", []):
                if b["type"] == "oa.open.url":
                    buttons.append({"title": b["title"], "url": b["payload"]["url"]})
                else:
                    buttons.append({"title": b["title"], "payload": b["payload"]})
            out.append(BotReply(call.message.get("text", ""), buttons))
        return out


class TelegramCustomer(Customer):
    channel = "telegram"

    def __init__(self, cs: ChannelStack) -> None:
        super().__init__(cs)
        self.chat_id = 700000000 + uuid.uuid4().int % 10**8

    @property
    def sender_id(self) -> str:
        return f"telegram:{self.chat_id}"

    def _post(self, update: dict[str, Any]) -> None:
        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
        status, body = http(
            "POST", f"{self.cs.rasa}/webhooks/telegram/webhook", json.dumps(update).encode(), headers
        )
        assert status == 200, body

    def say(self, text: str) -> None:
        self.transcript.append(f"customer: {text}")
        self._post(text_update(self.chat_id, text, next_update_id()))

    def tap(self, button: dict[str, str]) -> None:
        self.transcript.append(f"customer taps: {button['title']}")
        self._post(callback_update(self.chat_id, button["payload"]))

    def share_phone(self, phone: str) -> None:
        self.transcript.append(f"customer shares own phone {phone}")
        self._post(contact_update(self.chat_id, phone, self.chat_id))

    def asked_for_contact(self) -> bool:
        """A reply keyboard with a request_contact button was sent to this chat."""
        for call in self.cs.telegram.sent(chat_id=self.chat_id):
            rows = (call.params.get("reply_markup") or {}).get("keyboard", [])
            if any(b.get("request_contact") for row in rows for b in row):
                return True
        return False

    def _all_replies(self) -> list[BotReply]:
        out = []
        for call in self.cs.telegram.sent(chat_id=self.chat_id):
            if call.method == "sendMessage":
                buttons = []
                for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []):
                    for b in row:
                        key = "url" if "url" in b else "payload"
                        buttons.append({"title": b["text"], key: b.get("url") or b.get("callback_data")})
                out.append(BotReply(html.unescape(call.params.get("text", "")), buttons))
            elif call.method == "sendDocument":
                out.append(
                    BotReply(html.unescape(call.params.get("caption", "")), [], call.params["document"])
                )
        return out


def latest_otp(outbox: Path, since: float) -> str:
    """The 6-digit code of the newest SMS written to the development outbox after ``since``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if outbox.exists():
            for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
                msg = json.loads(line)
                if msg.get("channel") == "sms" and _epoch(msg.get("created_at")) >= since - 1:
                    match = re.search(r"(?<!\d)(\d{6})(?!\d)", msg.get("text", ""))
                    if match:
                        return match.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no OTP SMS in {outbox}")


def _epoch(value: Any) -> float:
    from datetime import datetime

    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
