"""Subscribed customers and a burst of notification events, written straight into a signing database
(for bench/bench_notify.py and the notifier's process tests). Each subscriber is a Telegram chat
verified for its request, as the signing service would have recorded it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from signing_service import events
from signing_service.db import Database
from signing_service.demo.data import NewRequest, add_request, ensure_units
from signing_service.models import ChatVerification, NotificationSubscription, Request

FIRST_CHAT_ID = 880_000_000


@dataclass
class Seeded:
    request_ids: list[int]
    chat_ids: list[int]  # Telegram chat ids of every subscriber


async def seed(db: Database, requests: int, subscribers: int, now: datetime) -> Seeded:
    """`requests` requests (two drafts awaiting signature each), `subscribers` verified Telegram chats
    subscribed to each."""
    async with db.init_lock():
        await db.create_schema()
    async with db.write() as s:
        await ensure_units(s)
    rng = random.Random(16)
    request_ids: list[int] = []
    chat_ids: list[int] = []
    async with db.write() as s:
        taken = set((await s.execute(select(Request.code))).scalars())
        for _ in range(requests):
            code = f"PC05TK{rng.randrange(10**7):07d}"
            while code in taken:
                code = f"PC05TK{rng.randrange(10**7):07d}"
            taken.add(code)
            req = await add_request(
                s,
                NewRequest(
                    code,
                    "PC05TK",
                    "Nguyễn Văn Bình",
                    "12 Phan Bội Châu, TP Tam Kỳ, Quảng Nam",
                    f"09{rng.randrange(10**8):08d}",
                    None,
                    "lv_new_supply",
                    now - timedelta(days=1),
                    "contract_signing",
                    documents=[
                        ("hdmbd_sinh_hoat", "awaiting_signature"),
                        ("bb_thoa_thuan_dau_noi", "awaiting_signature"),
                    ],
                    relative_dates=False,
                ),
                now,
            )
            request_ids.append(req.id)
            for _ in range(subscribers):
                chat_id = FIRST_CHAT_ID + len(chat_ids)
                chat_ids.append(chat_id)
                user = f"telegram:{chat_id}"
                s.add(
                    ChatVerification(
                        request_id=req.id,
                        chat_channel="telegram",
                        chat_user=user,
                        method="telegram_contact",
                        verified_at=now,
                        expires_at=now + timedelta(days=30),
                    )
                )
                s.add(
                    NotificationSubscription(
                        request_id=req.id, chat_channel="telegram", chat_user=user, created_at=now
                    )
                )
    return Seeded(request_ids, chat_ids)


async def raise_burst(db: Database, request_ids: list[int], per_request: int, now: datetime) -> None:
    """`per_request` "documents ready" events for every request, in one transaction."""
    async with db.write() as s:
        for request_id in request_ids:
            for _ in range(per_request):
                events.raise_event(s, request_id=request_id, kind=events.DOCUMENTS_READY, at=now)
