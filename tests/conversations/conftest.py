"""Helpers for end-to-end conversations over the REST channel of a real Rasa server."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests import demo_data
from tests.conftest import Stack

TIMEOUT = aiohttp.ClientTimeout(total=60)


class Chat:
    """One customer talking to the bot over POST /webhooks/rest/webhook."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession, sender_id: str) -> None:
        self.stack = stack
        self.session = session
        self.sender_id = sender_id
        self.last: list[dict[str, Any]] = []

    async def say(self, text: str) -> list[dict[str, Any]]:
        url = f"{self.stack.rasa_url}/webhooks/rest/webhook"
        async with self.session.post(url, json={"sender": self.sender_id, "message": text}) as resp:
            assert resp.status == 200, await resp.text()
            self.last = await resp.json()
        return self.last

    @property
    def text(self) -> str:
        return "\n".join(m.get("text", "") for m in self.last)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [b for m in self.last for b in m.get("buttons", [])]

    def payload(self, title_part: str) -> str:
        for b in self.buttons:
            if title_part in b["title"]:
                return str(b["payload"])
        raise AssertionError(f"no button with {title_part!r} in {[b['title'] for b in self.buttons]}")

    async def verify_by_code(self, phone: str) -> None:
        """Answer the verification prompt as the owner of `phone`: a code by SMS, typed back."""
        assert "xác minh" in self.text, self.text
        await self.say("sms")
        assert "mã xác minh" in self.text, self.text
        await self.say(last_otp(self.stack, phone))
        assert "Xác minh thành công" in self.text, self.text

    async def slots(self) -> dict[str, Any]:
        url = f"{self.stack.rasa_url}/conversations/{self.sender_id}/tracker"
        async with self.session.get(url, params={"token": self.stack.rasa_token}) as resp:
            assert resp.status == 200
            return dict((await resp.json())["slots"])


@pytest.fixture
async def chat(rasa_stack: Stack, sender_id: str) -> AsyncIterator[Chat]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        yield Chat(rasa_stack, session, sender_id)


def last_otp(stack: Stack, to: str) -> str:
    """The code of the latest message sent to `to` in the stack's outbox (the fake SMS/e-mail)."""
    code = demo_data.last_code(stack.outbox, to)
    assert code, f"no OTP for {to} in the outbox"
    return code


def request_contact(stack: Stack, code: str) -> str:
    """The full registered phone of a request (the test plays the customer who owns the phone)."""
    phone = demo_data.sms_contact(stack.root / "signing.db", code)
    assert phone, code
    return phone


def codes_awaiting(stack: Stack, documents: int) -> list[str]:
    """Generated demo requests with exactly `documents` drafts awaiting signature."""
    return demo_data.codes_awaiting(stack.root / "signing.db", documents)


def verified_earlier(chat: Chat, code: str) -> None:
    """The chat's sender verified for `code` days ago (its code can no longer confirm a signing): the
    state of a returning customer, written straight into the signing service's database."""
    with sqlite3.connect(chat.stack.root / "signing.db") as conn:
        (request_id,) = conn.execute("select id from requests where code = ?", (code,)).fetchone()
        conn.execute(
            "insert into chat_verifications"
            " (request_id, chat_channel, chat_user, method, verified_at, expires_at)"
            " values (?, 'rest', ?, 'otp_sms', datetime('now', '-2 days'), datetime('now', '+28 days'))",
            (request_id, chat.sender_id),
        )
