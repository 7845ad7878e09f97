"""Staff / CMIS API: moving a request to its next step (audited, raising its notification event in the
same transaction), and who may call it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from signing_service.models import NotificationEvent, Request
from signing_service.workdays import VN_TZ
from tests.service.conftest import Api, make_request


async def events_of(api: Api, code: str) -> list[NotificationEvent]:
    async with api.ctx.db.read() as s:
        req_id = (await s.execute(select(Request.id).where(Request.code == code))).scalar_one()
        rows = await s.execute(
            select(NotificationEvent)
            .where(NotificationEvent.request_id == req_id)
            .order_by(NotificationEvent.id)
        )
        return list(rows.scalars())


async def test_advance_moves_to_the_next_step_audits_and_raises_one_event(api: Api) -> None:
    fresh = await make_request(api)  # lv_new_supply, at "contract_signing"
    status, got = await api.post(f"/v1/requests/{fresh.code}/advance", {"by": "lan.nv"})
    assert status == 200, got
    assert got["current_step"] == "Thi công" and got["step_key"] == "installation"
    assert got["previous_step"] == "Ký hợp đồng" and got["completed"] is False
    _, shown = await api.get(f"/v1/requests/{fresh.code}")
    assert shown["current_step"] == {"key": "installation", "name": "Thi công"}
    states = {st["key"]: st["state"] for st in shown["steps"]}
    assert states["contract_signing"] == "done" and states["installation"] == "current"
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    moved = [e for e in trail["events"] if e["action"] == "request_advanced"]
    assert len(moved) == 1 and moved[0]["actor"] == "staff:lan.nv"
    [event] = await events_of(api, fresh.code)
    assert event.kind == "step_changed" and event.dispatched_at is None
    assert event.payload == {"step_from": "contract_signing", "step_to": "installation"}
    assert got["event_id"] == event.id


async def test_the_last_step_completes_the_request_and_nothing_comes_after(api: Api) -> None:
    fresh = await make_request(api)
    answers = [await api.post(f"/v1/requests/{fresh.code}/advance") for _ in range(3)]
    assert [a[1]["step_key"] for a in answers] == ["installation", "meter", "done"]
    assert answers[-1][1]["completed"] is True and answers[-1][1]["current_step"] == "Hoàn thành"
    _, shown = await api.get(f"/v1/requests/{fresh.code}")
    assert shown["status"] == "completed" and shown["completed_at"]
    status, got = await api.post(f"/v1/requests/{fresh.code}/advance")
    assert (status, got["error"]) == (409, "request_completed")
    assert "hoàn thành" in got["message"]
    kinds = [e.kind for e in await events_of(api, fresh.code)]
    assert kinds == ["step_changed", "step_changed", "request_completed"]  # the refused call raised none


async def test_only_staff_with_the_token_may_advance(api: Api) -> None:
    fresh = await make_request(api)
    chat = {"X-Chat-Channel": "telegram", "X-Chat-User": "12345"}
    status, got = await api.post(f"/v1/requests/{fresh.code}/advance", headers=chat)
    assert (status, got["error"]) == (403, "staff_only")
    async with api.client.post(f"/v1/requests/{fresh.code}/advance") as r:  # no bearer token
        assert r.status == 401
    status, got = await api.post("/v1/requests/PC05TK0000000/advance")
    assert (status, got["error"]) == (404, "request_not_found")
    status, got = await api.post("/v1/requests/not-a-code/advance")
    assert status == 400
    status, got = await api.post(f"/v1/requests/{fresh.code}/advance", {"by": "x" * 65})
    assert status == 400
    assert await events_of(api, fresh.code) == []
    _, shown = await api.get(f"/v1/requests/{fresh.code}")
    assert shown["current_step"]["key"] == "contract_signing"


async def test_a_demo_request_shows_the_move_at_todays_date_even_on_a_weekend(api: Api) -> None:
    """Demo rows are shifted at read time by the working days since the demo was made; the step the
    staff just started reads as started now, also on a Saturday weeks later."""
    clock = api.ctx.clock
    local = clock.now().astimezone(VN_TZ)
    days = 14 + (5 - local.weekday()) % 7  # a Saturday at least two weeks on
    clock.advance(days=days, hours=10 - local.hour)  # type: ignore[attr-defined]
    today = clock.now().astimezone(VN_TZ).date()
    assert today.weekday() == 5
    _, before = await api.get("/v1/requests/PC05TK0000123")
    status, got = await api.post("/v1/requests/PC05TK0000123/advance")
    assert status == 200, got
    _, shown = await api.get("/v1/requests/PC05TK0000123")
    started = next(st["started_at"] for st in shown["steps"] if st["key"] == got["step_key"])
    assert started[:10] == today.isoformat()
    # The earlier steps and the reception date read as they did before the move.
    assert shown["received_at"] == before["received_at"]
    done_before = {st["key"]: st["finished_at"] for st in before["steps"] if st["state"] == "done"}
    assert {
        k: v for k, v in ((st["key"], st["finished_at"]) for st in shown["steps"]) if k in done_before
    } == done_before


async def test_a_staff_login_with_control_characters_is_refused(api: Api) -> None:
    fresh = await make_request(api)
    for bad in ("lan\u0000", "lan nv", "dòng\nmới"):
        status, got = await api.post(
            f"/v1/requests/{fresh.code}/advance", {"by": bad.encode().decode("unicode_escape")}
        )
        assert (status, got["error"]) == (400, "invalid_field")
    assert await events_of(api, fresh.code) == []


async def test_revising_and_the_audit_trail_are_staff_only(api: Api) -> None:
    fresh = await make_request(api)
    chat = {"X-Chat-Channel": "telegram", "X-Chat-User": "12345"}
    status, got = await api.post(f"/v1/documents/{fresh.doc_ids[0]}/revise", headers=chat)
    assert (status, got["error"]) == (403, "staff_only")
    status, got = await api.get(f"/v1/requests/{fresh.code}/audit", headers=chat)
    assert (status, got["error"]) == (403, "staff_only")


async def test_a_revised_draft_raises_documents_ready_with_its_version(api: Api) -> None:
    fresh = await make_request(api)
    status, revised = await api.post(f"/v1/documents/{fresh.doc_ids[0]}/revise")
    assert status == 200 and revised["version"] == 2
    [event] = await events_of(api, fresh.code)
    assert event.kind == "documents_ready"
    assert event.payload == {"document_id": fresh.doc_ids[0], "version": 2, "reason": "revised"}


async def test_an_unexpected_error_logs_the_route_not_the_request_code(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from signing_service import staff_flow

    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(staff_flow, "advance", broken)
    fresh = await make_request(api)
    status, got = await api.post(f"/v1/requests/{fresh.code}/advance")
    assert (status, got["error"]) == (500, "internal_error")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/v1/requests/{code}/advance" in logged and fresh.code not in logged
