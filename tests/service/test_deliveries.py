"""The notifier's side of the delivery table (issue 16): claim, daily cap, retries and backoff,
recovery after a crash, the scheduled scan (late once, reminders 2 + 3 + 3 working days), and the
events of amendments and signed copies. Real signing service app, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from signing_service import deliveries, events, notice_scan
from signing_service.deliveries import Job
from signing_service.models import NotificationDelivery, NotificationEvent, Request
from signing_service.notifications import fan_out
from signing_service.workdays import VN_TZ
from tests.service.conftest import Api, Fresh, make_request
from tests.service.test_notifications import move_to, subscribe
from tests.service.test_verification import chat, verified


async def drain(api: Api) -> None:
    """Events and due deliveries other tests left in the shared database: out of the way."""
    while await fan_out(api.ctx):
        pass
    async with api.ctx.db.write() as s:
        await s.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.state.in_(("pending", "claimed", "sending")))
            .values(state="cancelled")
        )


async def subscribed(api: Api, user: str) -> tuple[Fresh, dict[str, str]]:
    fresh = await make_request(api)
    who = chat(user)
    await verified(api, fresh, who)
    status, _ = await subscribe(api, fresh, who)
    assert status == 200
    return fresh, who


async def advance(api: Api, fresh: Fresh) -> dict[str, Any]:
    status, body = await api.post(f"/v1/requests/{fresh.code}/advance")
    assert status == 200, body
    return dict(body)


async def claim_mine(api: Api, user: str, limit: int = 100) -> list[Job]:
    jobs = await deliveries.claim(api.ctx, limit)
    return [j for j in jobs if j.chat_user == user]


async def one_claimed_notice(api: Api, user: str) -> tuple[Fresh, dict[str, str], Job]:
    """`user` subscribed to a fresh request at 10:00, the request moved on, its notice claimed."""
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, who = await subscribed(api, user)
    await advance(api, fresh)
    await fan_out(api.ctx)
    (job,) = await claim_mine(api, user)
    return fresh, who, job


async def states(api: Api, ids: list[int]) -> list[str]:
    async with api.ctx.db.read() as s:
        rows = await s.execute(
            select(NotificationDelivery.state)
            .where(NotificationDelivery.id.in_(ids))
            .order_by(NotificationDelivery.id)
        )
        return list(rows.scalars())


async def test_a_claimed_notice_carries_what_its_message_says_and_is_sent_once(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, _ = await subscribed(api, "tg-claim")
    moved = await advance(api, fresh)
    await fan_out(api.ctx)
    jobs = await claim_mine(api, "tg-claim")
    assert len(jobs) == 1
    job = jobs[0]
    assert (job.kind, job.chat_channel, job.phone) == ("step_changed", "telegram", fresh.phone)
    assert job.params["code"] == fresh.code and job.params["step"] == moved["current_step"]
    assert await claim_mine(api, "tg-claim") == []  # claimed: no other notifier gets it
    assert await deliveries.start(api.ctx, job)
    assert not await deliveries.start(api.ctx, job)  # once
    assert await deliveries.finish(api.ctx, job, "sent", "telegram") == "sent"
    _, listed = await api.get("/v1/notifications?chat_channel=telegram&chat_user=tg-claim")
    assert [(n["kind"], n["state"], n["via"]) for n in listed["notices"]] == [
        ("step_changed", "sent", "telegram")
    ]


async def test_the_desk_listing_is_staff_only_and_checks_its_input(api: Api) -> None:
    status, got = await api.get("/v1/notifications?chat_channel=telegram&chat_user=x", headers=chat("x"))
    assert (status, got["error"]) == (403, "staff_only")
    status, got = await api.get("/v1/notifications?chat_channel=fax&chat_user=x")
    assert (status, got["field"]) == (400, "chat_channel")
    status, got = await api.get("/v1/notifications?chat_channel=zalo&chat_user=" + "x" * 200)
    assert (status, got["field"]) == (400, "chat_user")


async def test_the_daily_cap_holds_the_rest_until_the_next_morning(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 9)  # type: ignore[arg-type]
    cap = api.ctx.settings.notify_daily_cap
    fresh, _ = await subscribed(api, "tg-cap")
    async with api.ctx.db.write() as s:  # more news in a day than the cap allows
        req_id = (await s.execute(select(Request.id).where(Request.code == fresh.code))).scalar_one()
        for _ in range(cap + 1):
            events.raise_event(s, request_id=req_id, kind=events.DOCUMENTS_READY, at=api.ctx.clock.now())
    await fan_out(api.ctx)
    jobs = await claim_mine(api, "tg-cap")
    assert len(jobs) == cap
    for job in jobs:
        await deliveries.start(api.ctx, job)
        await deliveries.finish(api.ctx, job, "sent", "telegram")
    assert await claim_mine(api, "tg-cap") == []  # the one over the cap waits...
    async with api.ctx.db.read() as s:
        held = (
            (
                await s.execute(
                    select(NotificationDelivery.not_before).where(NotificationDelivery.state == "pending")
                )
            )
            .scalars()
            .all()
        )
    local = [h.astimezone(VN_TZ) for h in held]
    assert len(local) == 1 and (local[0].hour, local[0].minute) == (
        7,
        0,
    )  # ...for the morning, after the quiet hours
    api.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    assert len(await claim_mine(api, "tg-cap")) == 1  # nothing was dropped


async def test_temporary_errors_back_off_then_fail_and_are_recorded(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, _ = await subscribed(api, "tg-retry")
    await advance(api, fresh)
    await fan_out(api.ctx)
    waits = []
    for attempt in range(1, api.ctx.settings.notify_max_attempts + 1):
        (job,) = await claim_mine(api, "tg-retry")
        assert job.attempts == attempt - 1
        await deliveries.start(api.ctx, job)
        state = await deliveries.finish(api.ctx, job, "retry", "telegram", "NetworkError")
        if state == "failed":
            break
        assert await claim_mine(api, "tg-retry") == []  # not before its backoff
        async with api.ctx.db.read() as s:
            d = await s.get(NotificationDelivery, job.delivery_id)
            assert d is not None
            waits.append((d.not_before - api.ctx.clock.now()).total_seconds())
            api.ctx.clock.advance(seconds=waits[-1])  # type: ignore[attr-defined]
    assert state == "failed"
    assert waits == [30, 60, 120, 240, 480][: len(waits)]
    assert await states(api, [job.delivery_id]) == ["failed"]
    _, listed = await api.get("/v1/notifications?chat_channel=telegram&chat_user=tg-retry")
    assert listed["notices"][0]["error"] == "NetworkError"


async def test_a_crashed_notifier_loses_nothing_and_sends_nothing_twice(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, _ = await subscribed(api, "tg-crash")
    await advance(api, fresh)
    await advance(api, fresh)
    await fan_out(api.ctx)
    started, never_started = await claim_mine(api, "tg-crash")
    await deliveries.start(api.ctx, started)  # the crash comes during this call
    lease = api.ctx.settings.notify_lease_seconds
    api.ctx.clock.advance(seconds=lease + 1)  # type: ignore[attr-defined]
    assert await deliveries.recover(api.ctx) == (1, 0)  # the claim is back; the call may still be running
    api.ctx.clock.advance(seconds=deliveries.SENDING_LEASE_FACTOR * lease)  # type: ignore[attr-defined]
    assert await deliveries.recover(api.ctx) == (0, 1)
    assert await states(api, [started.delivery_id, never_started.delivery_id]) == ["interrupted", "pending"]
    assert [j.delivery_id for j in await claim_mine(api, "tg-crash")] == [never_started.delivery_id]


async def test_a_stopping_notifier_hands_back_what_it_did_not_start(api: Api) -> None:
    *_, job = await one_claimed_notice(api, "tg-release")
    await deliveries.release(api.ctx, [job])
    assert [j.delivery_id for j in await claim_mine(api, "tg-release")] == [job.delivery_id]


async def test_a_notice_for_someone_no_longer_verified_is_cancelled_not_sent(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, who = await subscribed(api, "tg-lapsed")
    await advance(api, fresh)
    await fan_out(api.ctx)
    api.ctx.clock.advance(days=31)  # type: ignore[attr-defined] # the verification lapsed overnight
    assert await claim_mine(api, "tg-lapsed") == []
    _, listed = await api.get("/v1/notifications?chat_channel=telegram&chat_user=tg-lapsed")
    assert [(n["state"], n["error"]) for n in listed["notices"]] == [("cancelled", "not_subscribed")]


async def reminders_and_late(api: Api, request_code: str) -> list[tuple[str, Any]]:
    async with api.ctx.db.read() as s:
        rows = await s.execute(
            select(NotificationEvent.kind, NotificationEvent.payload)
            .join(Request, Request.id == NotificationEvent.request_id)
            .where(
                Request.code == request_code, NotificationEvent.kind.in_(("sign_reminder", "request_late"))
            )
            .order_by(NotificationEvent.id)
        )
        return [(k, (p or {}).get("number")) for k, p in rows.all()]


async def test_sign_reminders_come_after_2_then_every_3_working_days_at_most_3(api: Api) -> None:
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    while api.ctx.clock.now().astimezone(VN_TZ).weekday() != 0:  # a Monday
        api.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    fresh = await make_request(api)  # two drafts awaiting signature since yesterday
    async with api.ctx.db.write() as s:  # ready today, not yesterday (a Sunday)
        await s.execute(update(Request).where(Request.code == fresh.code).values(committed_working_days=200))
    from signing_service.models import Document

    async with api.ctx.db.write() as s:
        await s.execute(
            update(Document).where(Document.id.in_(fresh.doc_ids)).values(created_at=api.ctx.clock.now())
        )
    who = chat("tg-remind")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    seen: list[str] = []
    for _day in range(16):  # Monday week 1 .. Monday week 4 (calendar days)
        await notice_scan.scan(api.ctx)
        await notice_scan.scan(api.ctx)  # twice a day: nothing more
        got = await reminders_and_late(api, fresh.code)
        if len(got) > len(seen):
            seen.append(api.ctx.clock.now().astimezone(VN_TZ).strftime("%a"))
        api.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    # Monday ready: Wednesday (2 working days), the Monday after (3 more), then Thursday; no 4th.
    assert await reminders_and_late(api, fresh.code) == [
        ("sign_reminder", 1),
        ("sign_reminder", 2),
        ("sign_reminder", 3),
    ]
    assert seen == ["Wed", "Mon", "Thu"]


async def test_a_request_that_becomes_late_is_reported_once(api: Api) -> None:
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh = await make_request(api)
    async with api.ctx.db.write() as s:  # due in 2 working days; nothing left to sign
        await s.execute(update(Request).where(Request.code == fresh.code).values(committed_working_days=2))
        from signing_service.models import Document

        await s.execute(update(Document).where(Document.id.in_(fresh.doc_ids)).values(status="signed"))
    who = chat("tg-late")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    for _ in range(10):
        await notice_scan.scan(api.ctx)
        api.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    assert await reminders_and_late(api, fresh.code) == [("request_late", None)]


async def test_a_request_already_late_when_subscribed_is_not_reported_late(api: Api) -> None:
    fresh = await make_request(api)
    async with api.ctx.db.write() as s:
        await s.execute(
            update(Request)
            .where(Request.code == fresh.code)
            .values(committed_working_days=1, received_at=api.ctx.clock.now() - timedelta(days=20))
        )
    who = chat("tg-was-late")
    await verified(api, fresh, who)
    await subscribe(api, fresh, who)
    await notice_scan.scan(api.ctx)
    assert ("request_late", None) not in await reminders_and_late(api, fresh.code)


async def test_revising_a_draft_with_an_open_amendment_answers_it(api: Api) -> None:
    fresh, who = await subscribed(api, "tg-amend")
    doc = fresh.doc_ids[0]
    status, _ = await api.post(
        f"/v1/requests/{fresh.code}/amendments",
        {"document_id": doc, "text": "Sai số nhà, đúng là 29", "chat_channel": "telegram"},
        headers=who,
    )
    assert status == 201
    status, _ = await api.post(f"/v1/documents/{doc}/revise")
    assert status == 200
    status, _ = await api.post(f"/v1/documents/{fresh.doc_ids[1]}/revise")  # no amendment asked: ready again
    assert status == 200
    async with api.ctx.db.read() as s:
        kinds = (
            (
                await s.execute(
                    select(NotificationEvent.kind)
                    .join(Request, Request.id == NotificationEvent.request_id)
                    .where(Request.code == fresh.code)
                    .order_by(NotificationEvent.id)
                )
            )
            .scalars()
            .all()
        )
    assert list(kinds) == ["amendment_answered", "documents_ready"]


async def test_a_claim_taken_back_and_made_again_is_started_by_its_new_holder_only(api: Api) -> None:
    await drain(api)
    move_to(api.ctx.clock, 10)  # type: ignore[arg-type]
    fresh, _ = await subscribed(api, "tg-slow")
    await advance(api, fresh)
    await fan_out(api.ctx)
    (slow,) = await claim_mine(api, "tg-slow")  # a notifier stalls past its lease...
    api.ctx.clock.advance(seconds=api.ctx.settings.notify_lease_seconds + 1)  # type: ignore[attr-defined]
    await deliveries.recover(api.ctx)
    (fresh_claim,) = await claim_mine(api, "tg-slow")  # ...another takes the notice
    assert not await deliveries.start(api.ctx, slow)  # the stalled one may not send it too
    assert await deliveries.start(api.ctx, fresh_claim)


async def test_stopping_cancels_a_notice_already_claimed(api: Api) -> None:
    fresh, who, job = await one_claimed_notice(api, "tg-stop-claimed")
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/notifications", headers={**api.headers, **who}
    ) as r:
        assert r.status == 200
    assert not await deliveries.start(api.ctx, job)  # the notifier holding it may not send it now
    assert await states(api, [job.delivery_id]) == ["cancelled"]


async def test_an_uncertain_call_is_recorded_interrupted_not_repeated(api: Api) -> None:
    *_, job = await one_claimed_notice(api, "tg-uncertain")
    await deliveries.start(api.ctx, job)
    assert await deliveries.finish(api.ctx, job, "uncertain", "telegram", "timed_out") == "interrupted"
    api.ctx.clock.advance(days=1)  # type: ignore[attr-defined]
    assert await claim_mine(api, "tg-uncertain") == []
