"""Units, request status and lookup over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from signing_service.http.middleware import code_tag
from signing_service.models import Request

from .conftest import Api, make_request


async def test_health_is_open_and_v1_needs_the_token(api: Api) -> None:
    async with api.client.get("/health") as r:
        assert r.status == 200
        assert (await r.json())["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer wrong-token-123456"}, {"Authorization": "Basic abc"}):
        async with api.client.get("/v1/units", headers=headers) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"


async def test_units_and_diacritic_insensitive_query(api: Api) -> None:
    status, body = await api.get("/v1/units")
    assert status == 200
    units = {u["code"]: u for u in body["units"]}
    assert len(units) >= 20
    assert units["PC05TK"] == {
        "code": "PC05TK",
        "name": "Điện lực Tam Kỳ",
        "company": "PC Quảng Nam",
        "area": "town",
    }
    assert units["PC04HV"]["area"] == "rural"
    for q in ("dien luc tam ky", "Tam Kỳ", "TAM KY", "pc05tk", "đl tam kỳ"):
        status, body = await api.get("/v1/units", params={"q": q})
        assert [u["code"] for u in body["units"]] == ["PC05TK"], q
    status, body = await api.get("/v1/units", params={"q": "hai chau"})
    assert [u["code"] for u in body["units"]] == ["PC04HC"]
    status, body = await api.get("/v1/units", params={"q": "x" * 101})
    assert status == 400 and body["error"] == "query_too_long"


async def test_units_by_company_or_province_and_no_match_on_short_words(api: Api) -> None:
    quang_nam = {"PC05TK", "PC05HA", "PC05DB", "PC05DX", "PC05NT", "PC05TB", "PC05DL"}
    for q in (
        "PC Quảng Nam",
        "quang nam",
        "Điện lực Quảng Nam",
        "công ty điện lực quảng nam",
        "tỉnh Quảng Nam",
    ):
        status, body = await api.get("/v1/units", params={"q": q})
        assert {u["code"] for u in body["units"]} == quang_nam, q
    # A province with a unit of its name: that unit first, then the company's other units.
    status, body = await api.get("/v1/units", params={"q": "thanh hóa"})
    codes = [u["code"] for u in body["units"]]
    assert codes[0] == "PC10TH" and set(codes) == {c for c in codes if c.startswith("PC10")}
    assert len(codes) == 6
    # Kinship or filler words of two letters ("bố", "an") name no unit.
    for q in ("bo", "an", "me"):
        status, body = await api.get("/v1/units", params={"q": q})
        assert body["units"] == [], q


async def test_status_of_demo_request_in_contract_signing(api: Api) -> None:
    status, body = await api.get("/v1/requests/pc05tk-0000123")
    assert status == 200
    assert body["code"] == "PC05TK0000123"
    assert body["unit"] == {"code": "PC05TK", "name": "Điện lực Tam Kỳ"}
    assert body["service_name"] == "Cấp điện mới hạ áp"
    assert body["customer"] == {
        "name_masked": "Nguyễn V** A*",
        "phone_masked": "090****456",
        "email_masked": "a*@example.com",
    }
    assert body["current_step"] == {"key": "contract_signing", "name": "Ký hợp đồng"}
    assert [s["name"] for s in body["steps"]] == [
        "Tiếp nhận yêu cầu",
        "Khảo sát",
        "Thỏa thuận/Phương án cấp điện",
        "Ký hợp đồng",
        "Thi công",
        "Treo tháo công tơ / Nghiệm thu đóng điện",
        "Hoàn thành",
    ]
    assert [s["state"] for s in body["steps"]] == ["done"] * 3 + ["current"] + ["pending"] * 3
    assert body["committed_working_days"] == 3
    assert body["late"] is False and body["late_working_days"] == 0
    assert body["status"] == "in_progress"
    assert body["documents_awaiting_signature"] == 2
    assert body["received_at"] < body["due_at"]


async def test_late_completed_and_survey_requests(api: Api) -> None:
    _, late = await api.get("/v1/requests/PC05HA0000789")
    assert late["late"] is True and late["late_working_days"] >= 3
    assert late["current_step"]["name"] == "Thi công"
    _, done = await api.get("/v1/requests/PC04HC0004567")
    assert done["status"] == "completed" and done["late"] is False
    assert all(s["state"] == "done" for s in done["steps"])
    _, survey = await api.get("/v1/requests/PC05TK0000456")
    assert survey["current_step"]["key"] == "survey" and survey["documents_awaiting_signature"] == 0


async def test_demo_rows_keep_their_story_on_later_dates(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    for days in (3, 40, 400):
        clock.advance(days=days)
        _, on_time = await api.get("/v1/requests/PC05TK0000123")
        _, late = await api.get("/v1/requests/PC05HA0000789")
        assert on_time["late"] is False, days
        assert late["late"] is True, days
        assert on_time["received_at"] < clock.now().isoformat()


async def test_bad_codes(api: Api) -> None:
    for raw in ("PC05TK000012", "XX05TK0000123", "PC05TK00001234", "hello", "%27%3B--", "P" * 300):
        status, body = await api.get(f"/v1/requests/{raw}")
        assert status == 400 and body["error"] == "invalid_request_code", raw
        assert body["message"]
    status, body = await api.get("/v1/requests/PC05TK9999998")
    assert status == 404 and body["error"] == "request_not_found"
    status, body = await api.get("/v1/nothing-here")
    assert status == 404 and body["error"] == "not_found"
    async with api.client.delete("/v1/units", headers=api.headers) as r:
        assert r.status == 405 and (await r.json())["error"] == "method_not_allowed"


CONV = {"X-Conversation-Id": "conv-names"}


async def resolve(api: Api, ref: str, conversation: str = "conv-names") -> tuple[int, Any]:
    return await api.get(f"/v1/candidates/{ref}", headers={**api.headers, "X-Conversation-Id": conversation})


async def test_lookup_by_name_gives_masked_candidates(api: Api) -> None:
    for name in ("Nguyễn Văn An", "nguyen van an", "NGUYEN  VAN AN"):
        status, body = await api.get(
            "/v1/requests", params={"unit": "PC05TK", "name": name}, headers={**api.headers, **CONV}
        )
        assert status == 200
        assert body["count"] == 2
        assert "PC05" not in json.dumps(body)  # no request code in the answer, only opaque refs
    by_code = {}
    for c in body["candidates"]:
        status, req = await resolve(api, c["ref"])
        assert status == 200
        by_code[req["code"]] = c
    assert set(by_code) == {"PC05TK0000123", "PC05TK0000456"}
    # A ref is bound to the conversation it was offered to.
    assert (await resolve(api, body["candidates"][0]["ref"], "another-conversation"))[0] == 404
    first = by_code["PC05TK0000123"]
    assert first["customer_name_masked"] == "Nguyễn V** A*"
    assert first["phone_masked"] == "090****456"
    assert first["address_masked"].startswith("***, P. Tân Thạnh")
    assert "Phan Chu Trinh" not in first["address_masked"]
    assert by_code["PC05TK0000456"]["address_masked"] != first["address_masked"]
    status, body = await api.get(
        "/v1/requests",
        params={"unit": "pc05tk", "name": "Nguyễn Văn Không Có"},
        headers={**api.headers, **CONV},
    )
    assert status == 200 and body == {"count": 0, "more": False, "candidates": []}


async def test_lookup_is_bounded_and_checked(api: Api) -> None:
    cases = [
        ({"unit": "PC99ZZ", "name": "Nguyễn An"}, 404, "unknown_unit"),
        ({"unit": "tam ky", "name": "Nguyễn An"}, 400, "invalid_unit"),
        ({"unit": "PC05TK"}, 400, "name_required"),
        ({"unit": "PC05TK", "name": " "}, 400, "name_required"),
        ({"unit": "PC05TK", "name": "a" * 101}, 400, "query_too_long"),
        # One word (a common family or given name) would list a unit's customers.
        ({"unit": "PC04HC", "name": "Nguyễn"}, 400, "name_too_short"),
    ]
    for params, code, error in cases:
        status, body = await api.get("/v1/requests", params=params, headers={**api.headers, **CONV})
        assert (status, body["error"]) == (code, error), params
    # Part of a name (family + middle name) lists nobody; the full name at most 5 namesakes.
    for _ in range(7):
        await make_request(api, name="Đoàn Thị Mười Hai")
    params = {"unit": "PC05TK", "name": "Đoàn Thị"}
    status, body = await api.get("/v1/requests", params=params, headers={**api.headers, **CONV})
    assert (status, body["count"]) == (200, 0)
    params = {"unit": "PC05TK", "name": "doan thi muoi hai"}
    status, body = await api.get("/v1/requests", params=params, headers={**api.headers, **CONV})
    assert status == 200 and body["more"] is True
    assert body["count"] == 5 == len(body["candidates"])


async def test_contacts_are_masked(api: Api) -> None:
    status, body = await api.get("/v1/requests/PC05TK0000123/contacts")
    assert (status, body) == (200, {"sms": "090****456", "email": "a*@example.com"})
    status, body = await api.get("/v1/requests/PC05TK0000456/contacts")
    assert body == {"sms": "093****789", "email": None}


async def test_demo_data_is_large_and_loaded_once(api: Api) -> None:
    async with api.ctx.db.read() as s:
        count = (await s.execute(select(func.count(Request.id)))).scalar_one()
        late = (await s.execute(select(Request).where(Request.current_step != "done"))).scalars().all()
    assert count >= 300
    assert late
    from signing_service.demo.data import load_demo_data

    assert await load_demo_data(api.ctx.db, api.ctx.clock.now()) is False
    async with api.ctx.db.read() as s:
        assert (await s.execute(select(func.count(Request.id)))).scalar_one() == count


async def test_generated_requests_are_consistent(api: Api) -> None:
    from datetime import datetime

    async with api.ctx.db.read() as s:
        codes = list((await s.execute(select(Request.code).order_by(Request.id).limit(60))).scalars())
    now = api.ctx.clock.now()
    seen_late = seen_on_time = 0
    for code in codes:
        status, body = await api.get(f"/v1/requests/{code}")
        assert status == 200, code
        starts = [datetime.fromisoformat(st["started_at"]) for st in body["steps"] if st["started_at"]]
        assert starts == sorted(starts), code
        assert all(t <= now for t in starts), code
        # Steps begin in office hours (the reception itself may be at any time).
        assert all(8 <= t.hour < 17 for t in starts[1:] if body["status"] == "in_progress"), code
        assert [st["state"] for st in body["steps"]].count("current") == (body["status"] == "in_progress")
        end = datetime.fromisoformat(body["completed_at"]) if body["completed_at"] else now
        assert body["late"] == (end > datetime.fromisoformat(body["due_at"])), code
        seen_late += body["late"]
        seen_on_time += not body["late"]
    assert seen_late and seen_on_time


async def test_access_log_keeps_caller_text_out(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Whatever a caller puts in a path (a phone, an e-mail, a script) is not written to the log."""
    caplog.set_level(logging.INFO, logger="signing_service.access")
    hostile = ["0905123456", "an@example.com", "<script>x</script>", "Nguyễn Văn An"]
    for text in hostile:
        status, _ = await api.get(f"/v1/requests/{text}")
        assert status in (400, 404)
        status, _ = await api.post(f"/v1/signing-sessions/{text}/verify", {"otp": "123456"})
        assert status in (400, 404)
    await api.get("/v1/requests/PC05TK0000123")
    lines = [r.getMessage() for r in caplog.records if r.name == "signing_service.access"]
    tag = code_tag(api.ctx.settings.secret_key, "PC05TK0000123")
    assert any(f"/v1/requests/{tag} 200" in line for line in lines), lines
    logged = "\n".join(lines)
    assert "PC05TK0000123" not in logged  # request codes appear as a keyed hash only
    for text in hostile:
        assert text not in logged
