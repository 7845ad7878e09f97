"""Notifications (issue 16, first part): who may subscribe, and the fan-out of events into one
delivery per current subscriber, held over quiet hours, shared by concurrent workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from signing_service.clock import ManualClock
from signing_service.http.app import create_app
from signing_service.models import NotificationDelivery, NotificationEvent, NotificationSubscription
from signing_service.notifications import fan_out
from signing_service.workdays import VN_TZ
from tests.service.conftest import Api, Fresh, make_request, make_settings
from tests.service.test_verification import chat, verified


def move_to(clock: ManualClock, hour: int, minute: int = 0) -> datetime:
    """Advance the clock to the next hour:minute, Vietnam time."""
    local = clock.now().astimezone(VN_TZ)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= local:
        target += timedelta(days=1)
    clock.advance(seconds=(target - local).total_seconds())
    return clock.now()


async def subscribe(api: Api, fresh: Fresh, who: dict[str, str]) -> tuple[int, Any]:
    return await api.post(f"/v1/requests/{fresh.code}/notifications", headers=who)


async def deliveries(api: Api) -> list[tuple[int, str, datetime]]:
    async with api.ctx.db.read() as s:
        rows = await s.execute(
            select(
                NotificationDelivery.event_id,
                NotificationSubscription.chat_user,
                NotificationDelivery.not_before,
            )
            .join(
                NotificationSubscription, NotificationSubscription.id == NotificationDelivery.subscription_id
            )
            .order_by(NotificationDelivery.id)
        )
        return [(e, u, nb) for e, u, nb in rows.all()]


async def subscriptions_of(api: Api, user: str) -> int:
    async with api.ctx.db.read() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(NotificationSubscription)
            .where(NotificationSubscription.chat_user == user)
        )
    return int(count or 0)


async def test_only_a_verified_chat_user_subscribes_and_can_stop(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-sub-1")
    status, got = await subscribe(api, fresh, who)
    assert (status, got["error"]) == (403, "not_verified")
    status, got = await api.post(f"/v1/requests/{fresh.code}/notifications")
    assert (status, got["error"]) == (400, "chat_user_required")
    await verified(api, fresh, who)
    assert await subscribe(api, fresh, who) == (200, {"subscribed": True, "changed": True})
    # twice: still one row, and the bot can say "already on"
    assert await subscribe(api, fresh, who) == (200, {"subscribed": True, "changed": False})
    assert await api.get(f"/v1/requests/{fresh.code}/notifications", headers=who) == (
        200,
        {"subscribed": True},
    )
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/notifications", headers={**api.headers, **who}
    ) as r:
        assert (r.status, await r.json()) == (200, {"subscribed": False, "changed": True})
    assert await api.get(f"/v1/requests/{fresh.code}/notifications", headers=who) == (
        200,
        {"subscribed": False},
    )
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    assert [e["action"] for e in trail["events"] if e["action"].startswith("notifications_")] == [
        "notifications_on",
        "notifications_off",
    ]


async def test_each_event_reaches_each_current_subscriber_once(api: Api) -> None:
    fresh = await make_request(api)
    now = move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    subscriber, bystander, unlinked = chat("tg-a"), chat("tg-b"), chat("tg-c")
    for who in (subscriber, bystander, unlinked):
        await verified(api, fresh, who)
    await subscribe(api, fresh, subscriber)
    await subscribe(api, fresh, unlinked)
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/verification", headers={**api.headers, **unlinked}
    ) as r:
        assert r.status == 200  # "hủy liên kết": no longer verified, so no longer told anything
    while await fan_out(api.ctx):  # events other tests left in the shared database
        pass
    before = len(await deliveries(api))
    status, moved = await api.post(f"/v1/requests/{fresh.code}/advance")
    assert status == 200
    assert await fan_out(api.ctx) == 1
    assert await fan_out(api.ctx) == 0  # nothing left: a second worker or a restart adds nothing
    made = (await deliveries(api))[before:]
    assert made == [(moved["event_id"], "tg-a", now)]
    async with api.ctx.db.read() as s:
        event = await s.get(NotificationEvent, moved["event_id"])
        assert event is not None and event.dispatched_at == now


async def test_quiet_hours_hold_a_delivery_until_the_morning(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-night")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    move_to(api.ctx.clock, 22, 30)  # type: ignore[arg-type]
    await api.post(f"/v1/requests/{fresh.code}/advance")
    await fan_out(api.ctx)
    [(_, user, not_before)] = [d for d in await deliveries(api) if d[1] == "tg-night"]
    local = not_before.astimezone(VN_TZ)
    assert (local.hour, local.minute) == (7, 0)
    assert timedelta(hours=8) <= not_before - api.ctx.clock.now() <= timedelta(hours=9)


@pytest.fixture
async def no_quiet(
    aiohttp_client: Callable[..., Any], service_var: Any, request: pytest.FixtureRequest, clock: ManualClock
) -> Api:
    settings = make_settings(service_var, "sqlite", request, NOTIFY_QUIET_HOURS="")
    return Api(await aiohttp_client(create_app(settings, clock=clock)))


async def test_without_quiet_hours_a_night_event_is_due_at_once(no_quiet: Api) -> None:
    api = no_quiet
    fresh = await make_request(api)
    who = chat("tg-owl")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    now = move_to(api.ctx.clock, 23)  # type: ignore[arg-type]
    await api.post(f"/v1/requests/{fresh.code}/advance")
    await fan_out(api.ctx)
    assert [d[2] for d in await deliveries(api) if d[1] == "tg-owl"] == [now]


async def test_concurrent_workers_share_the_events_without_a_double_delivery(api: Api) -> None:
    fresh = await make_request(api)
    move_to(api.ctx.clock, 9)  # type: ignore[arg-type]
    users = [chat(f"tg-w{i}") for i in range(3)]
    for who in users:
        await verified(api, fresh, who)
        await subscribe(api, fresh, who)
    while await fan_out(api.ctx):  # whatever earlier tests left
        pass
    before = len(await deliveries(api))
    for _ in range(3):
        await api.post(f"/v1/requests/{fresh.code}/advance")
    results = await asyncio.gather(*(fan_out(api.ctx, limit=1) for _ in range(6)))
    while await fan_out(api.ctx, limit=1):
        pass
    assert sum(results) <= 3
    made = (await deliveries(api))[before:]
    assert len(made) == 9 and len(set((e, u) for e, u, _ in made)) == 9
    async with api.ctx.db.read() as s:
        pending = await s.scalar(
            select(func.count())
            .select_from(NotificationEvent)
            .where(NotificationEvent.dispatched_at.is_(None))
        )
        assert pending == 0


async def test_erasure_removes_the_chat_users_subscriptions(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-forget")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    status, _ = await api.post("/v1/chat-users/forget", headers=who)
    assert status == 200
    assert await subscriptions_of(api, "tg-forget") == 0


async def pending_for(api: Api, user: str) -> list[str]:
    async with api.ctx.db.read() as s:
        rows = await s.execute(
            select(NotificationDelivery.state)
            .join(
                NotificationSubscription, NotificationSubscription.id == NotificationDelivery.subscription_id
            )
            .where(NotificationSubscription.chat_user == user)
        )
        return list(rows.scalars())


async def test_stopping_or_unlinking_cancels_what_the_night_held(api: Api) -> None:
    fresh = await make_request(api)
    stopper, unlinker = chat("tg-stop"), chat("tg-unlink")
    for who in (stopper, unlinker):
        await verified(api, fresh, who)
        await subscribe(api, fresh, who)
    move_to(api.ctx.clock, 22)  # type: ignore[arg-type]
    await api.post(f"/v1/requests/{fresh.code}/advance")
    await fan_out(api.ctx)
    assert await pending_for(api, "tg-stop") == ["pending"] == await pending_for(api, "tg-unlink")
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/notifications", headers={**api.headers, **stopper}
    ) as r:
        assert r.status == 200
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/verification", headers={**api.headers, **unlinker}
    ) as r:
        assert r.status == 200
    assert await pending_for(api, "tg-stop") == ["cancelled"] == await pending_for(api, "tg-unlink")
    # Verifying again later does not silently resume the notices: the customer says yes again.
    await verified(api, fresh, unlinker)
    assert await api.get(f"/v1/requests/{fresh.code}/notifications", headers=unlinker) == (
        200,
        {"subscribed": False},
    )


async def test_stop_needs_no_live_verification(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-expired")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    api.ctx.clock.advance(days=31)  # type: ignore[attr-defined]
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/notifications", headers={**api.headers, **who}
    ) as r:
        assert (r.status, await r.json()) == (200, {"subscribed": False, "changed": True})
    status, got = await subscribe(api, fresh, who)
    assert (status, got["error"]) == (403, "not_verified")


async def test_two_taps_on_subscribe_at_once_make_one_subscription(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-double")
    await verified(api, fresh, who)
    answers = await asyncio.gather(*(subscribe(api, fresh, who) for _ in range(4)))
    assert sorted(a[1]["changed"] for a in answers) == [False, False, False, True]  # one made it
    assert {(a[0], a[1]["subscribed"]) for a in answers} == {(200, True)}
    assert await subscriptions_of(api, "tg-double") == 1
