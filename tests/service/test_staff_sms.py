"""`POST /v1/requests/{code}/staff-sms`: an agent's short text by SMS to the request's registered phone,
only for a conversation verified for the request, bounded, capped and audited (issue 18, Zalo window)."""

from __future__ import annotations

from signing_service.http.api_staff_sms import MAX_PER_DAY, MAX_TEXT
from signing_service.masking import mask_phone

from .conftest import Api, make_request, outbox_messages
from .test_verification import chat, verified

ZALO_USER = "zalo:6142000000077"


def body(text: str = "Dạ, hồ sơ của anh/chị đã sẵn sàng để ký ạ.", user: str = ZALO_USER) -> dict[str, str]:
    return {"text": text, "by": "lan", "chat_channel": "zalo", "chat_user": user}


async def test_an_agent_texts_the_registered_phone_of_a_verified_conversation(api: Api) -> None:
    fresh = await make_request(api)
    await verified(api, fresh, chat(ZALO_USER, "zalo"))
    before = len(outbox_messages(api.ctx.settings, fresh.phone))
    status, got = await api.post(f"/v1/requests/{fresh.code}/staff-sms", body())
    assert status == 200, got
    assert got == {"sent": True, "to": mask_phone(fresh.phone)}
    sms = outbox_messages(api.ctx.settings, fresh.phone)[before:]
    assert [m["channel"] for m in sms] == ["sms"]
    assert sms[0]["text"] == f"EVNCPC {fresh.code}: Dạ, hồ sơ của anh/chị đã sẵn sàng để ký ạ."
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    [event] = [e for e in trail["events"] if e["action"] == "staff_sms"]
    assert event["actor"] == "staff:lan"


async def test_refused_unless_verified_staff_and_bounded(api: Api) -> None:
    fresh = await make_request(api)
    path = f"/v1/requests/{fresh.code}/staff-sms"
    # Not verified: the code typed into a chat does not open the owner's phone to the agent.
    status, got = await api.post(path, body())
    assert (status, got["error"]) == (403, "not_verified")
    await verified(api, fresh, chat(ZALO_USER, "zalo"))
    other = await api.post(path, body(user="zalo:6142000000099"))
    assert (other[0], other[1]["error"]) == (403, "not_verified")
    # Staff only: a call carrying chat headers is the bot's, not the desk's.
    status, got = await api.post(path, body(), headers=chat(ZALO_USER, "zalo"))
    assert (status, got["error"]) == (403, "staff_only")
    for bad in ({"text": ""}, {"text": "x" * (MAX_TEXT + 1)}, {"by": "lan nv"}, {"chat_channel": "fax"}):
        status, got = await api.post(path, {**body(), **bad})
        assert (status, got["error"]) == (400, "invalid_field"), bad
    status, got = await api.post("/v1/requests/PC05TK9999999/staff-sms", body())
    assert (status, got["error"]) == (404, "request_not_found")
    before = len(outbox_messages(api.ctx.settings, fresh.phone))
    for _ in range(MAX_PER_DAY):
        assert (await api.post(path, body()))[0] == 200
    status, got = await api.post(path, body())
    assert (status, got["error"]) == (429, "send_limit")
    assert len(outbox_messages(api.ctx.settings, fresh.phone)) == before + MAX_PER_DAY
