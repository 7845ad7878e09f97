"""Verified chat users: what an unverified chat user is refused, how verification works, and the OTP
budget per attacker (docs/security.md §0 and §2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from signing_service.clock import ManualClock
from signing_service.counters import COUNTERS
from signing_service.http.app import create_app

from .conftest import Api, Fresh, last_code, make_request, make_settings, outbox_messages, wrong_code


def chat(user: str, channel: str = "telegram") -> dict[str, str]:
    return {"X-Chat-Channel": channel, "X-Chat-User": user}


async def send_code(
    api: Api, fresh: Fresh, who: dict[str, str], channel: str = "sms", purpose: str = "view"
) -> tuple[int, Any]:
    body = {"request_code": fresh.code, "channel": channel, "purpose": purpose}
    return await api.post("/v1/verifications", body, headers=who)


async def verify_code(api: Api, challenge: str, code: str, who: dict[str, str]) -> tuple[int, Any]:
    return await api.post(f"/v1/verifications/{challenge}/verify", {"otp": code}, headers=who)


async def verified(api: Api, fresh: Fresh, who: dict[str, str], purpose: str = "view") -> dict[str, Any]:
    status, ch = await send_code(api, fresh, who, purpose=purpose)
    assert status == 201, ch
    status, body = await verify_code(api, ch["challenge_id"], last_code(api.ctx.settings, fresh.phone), who)
    assert status == 200 and body["verified"] is True, body
    return dict(body)


async def gated_calls(api: Api, fresh: Fresh, who: dict[str, str]) -> list[tuple[str, int, Any]]:
    """Every call that reveals documents or contacts, or acts on the request, made as `who`."""
    calls = [
        ("documents", *await api.get(f"/v1/requests/{fresh.code}/documents", headers=who)),
        ("contacts", *await api.get(f"/v1/requests/{fresh.code}/contacts", headers=who)),
        (
            "amendment",
            *await api.post(
                f"/v1/requests/{fresh.code}/amendments",
                {"document_id": fresh.doc_ids[0], "text": "Sai số nhà, đúng là 12"},
                headers=who,
            ),
        ),
        (
            "signing",
            *await api.post(
                "/v1/signing-sessions",
                {
                    "request_code": fresh.code,
                    "document_ids": fresh.doc_ids,
                    "channel": "sms",
                    "consent": True,
                },
                headers=who,
            ),
        ),
    ]
    return calls


async def test_unverified_chat_user_gets_no_document_contact_amendment_or_signing(api: Api) -> None:
    fresh = await make_request(api)
    stranger = chat("tg-stranger")
    before = COUNTERS.get("not_verified_refusals_total")
    calls = await gated_calls(api, fresh, stranger)
    assert [(name, status, body["error"]) for name, status, body in calls] == [
        (name, 403, "not_verified") for name in ("documents", "contacts", "amendment", "signing")
    ]
    leaked = json.dumps([body for _, _, body in calls], ensure_ascii=False)
    assert fresh.phone not in leaked and "http" not in leaked and "049190001111" not in leaked
    assert COUNTERS.get("not_verified_refusals_total") == before + 4
    assert outbox_messages(api.ctx.settings, fresh.phone) == []  # no code sent by the refused signing
    # The status by code stays available (masked, as on the portal).
    status, body = await api.get(f"/v1/requests/{fresh.code}", headers=stranger)
    assert status == 200 and body["code"] == fresh.code


async def test_code_verification_opens_the_documents_for_that_chat_user_only(api: Api) -> None:
    fresh = await make_request(api)
    owner = chat("tg-owner")
    status, info = await api.get(f"/v1/requests/{fresh.code}/verification", headers=owner)
    assert status == 200 and info["verified"] is False
    assert info["contacts"]["sms"].startswith(fresh.phone[:3]) and fresh.phone not in json.dumps(info)
    status, ch = await send_code(api, fresh, owner)
    assert status == 201 and ch["destination_masked"] != fresh.phone and "*" in ch["destination_masked"]
    text = outbox_messages(api.ctx.settings, fresh.phone)[-1]["text"]
    assert "xác minh" in text
    # Another chat user cannot use this challenge, even with the right code.
    code = last_code(api.ctx.settings, fresh.phone)
    status, body = await verify_code(api, ch["challenge_id"], code, chat("tg-thief"))
    assert (status, body["error"]) == (404, "challenge_not_found")
    status, body = await verify_code(api, ch["challenge_id"], code, owner)
    assert status == 200 and body["verified"] and body["method"] == "otp_sms"
    status, docs = await api.get(f"/v1/requests/{fresh.code}/documents", headers=owner)
    assert status == 200 and len(docs["documents"]) == 2
    # The same person on another channel, or another user, is still a stranger.
    for other in (chat("tg-owner", "zalo"), chat("tg-other")):
        assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=other))[0] == 403
    # Verification lasts 30 days by default.
    api.ctx.clock.advance(days=29)  # type: ignore[attr-defined]
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=owner))[0] == 200
    api.ctx.clock.advance(days=2)  # type: ignore[attr-defined]
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=owner))[0] == 403


async def test_unlink_by_customer_and_by_staff_is_audited(api: Api) -> None:
    fresh = await make_request(api)
    owner, second = chat("tg-a"), chat("tg-b")
    await verified(api, fresh, owner)
    api.ctx.clock.advance(seconds=61)  # type: ignore[attr-defined]
    await verified(api, fresh, second)
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/verification", headers={**api.headers, **owner}
    ) as r:
        assert (r.status, await r.json()) == (200, {"revoked": 1})
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=owner))[0] == 403
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=second))[0] == 200
    async with api.client.delete(f"/v1/requests/{fresh.code}/verification?by=lan", headers=api.headers) as r:
        assert (r.status, await r.json()) == (200, {"revoked": 1})
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=second))[0] == 403
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    actions = [e["action"] for e in trail["events"]]
    assert actions.count("chat_verified") == 2 and actions.count("verification_revoked") == 2
    revokers = [e["actor"] for e in trail["events"] if e["action"] == "verification_revoked"]
    assert revokers == ["customer:telegram:tg-a", "staff:lan"]


@pytest.mark.parametrize(
    ("source", "own", "phone", "verified", "reason"),
    [
        ("telegram_contact", True, "own", True, None),
        ("telegram_contact", True, "+84-own", True, None),
        ("telegram_contact", False, "own", False, "not_own_number"),  # someone else's contact card
        ("telegram_contact", True, "0911111111", False, "phone_mismatch"),
        ("zalo_user_info", False, "own", False, "not_guaranteed"),  # Zalo lets the user edit the number
    ],
)
async def test_shared_contact_verifies_only_the_own_registered_number(
    api: Api, source: str, own: bool, phone: str, verified: bool, reason: str | None
) -> None:
    fresh = await make_request(api)
    number = {"own": fresh.phone, "+84-own": "+84 " + fresh.phone[1:]}.get(phone, phone)
    who = chat("u-1", "telegram" if source == "telegram_contact" else "zalo")
    body = {"request_code": fresh.code, "phone": number, "source": source, "own_number": own}
    status, result = await api.post("/v1/verifications/contact", body, headers=who)
    assert status == 200 and result["verified"] is verified and result.get("reason") == reason
    assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=who))[0] == (
        200 if verified else 403
    )


async def test_wrong_codes_lock_the_challenge_and_send_caps_hold(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-guesser")
    _, ch = await send_code(api, fresh, who)
    bad = wrong_code(last_code(api.ctx.settings, fresh.phone))
    statuses = [(await verify_code(api, ch["challenge_id"], bad, who))[0] for _ in range(6)]
    assert statuses == [400, 400, 400, 400, 423, 423]
    # Resend within the cooldown is refused; a new challenge revokes the old one.
    status, ch2 = await send_code(api, fresh, who)
    assert status == 201
    async with api.client.post(
        f"/v1/verifications/{ch2['challenge_id']}/resend", headers={**api.headers, **who}
    ) as r:
        assert (r.status, (await r.json())["error"]) == (429, "resend_cooldown")


async def test_a_replaced_verification_code_is_named_so_and_not_counted(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-resender")
    _, ch = await send_code(api, fresh, who)
    old = last_code(api.ctx.settings, fresh.phone)
    api.ctx.clock.advance(seconds=61)  # type: ignore[attr-defined]
    async with api.client.post(
        f"/v1/verifications/{ch['challenge_id']}/resend", headers={**api.headers, **who}
    ) as r:
        assert r.status == 200
    new = last_code(api.ctx.settings, fresh.phone)
    if old == new:
        return
    status, got = await verify_code(api, ch["challenge_id"], old, who)
    assert (status, got["error"]) == (400, "otp_replaced")
    status, got = await verify_code(api, ch["challenge_id"], wrong_code(new), who)
    assert (status, got["attempts_left"]) == (400, 4)
    status, body = await verify_code(api, ch["challenge_id"], new, who)
    assert status == 200 and body["verified"] is True


@pytest.fixture
async def budget(
    aiohttp_client: Callable[..., Any], service_var: Path, request: pytest.FixtureRequest, clock: ManualClock
) -> Api:
    settings = make_settings(
        service_var,
        "sqlite",
        request,
        OTP_MAX_SENDS_PER_HOUR="100",
        OTP_MAX_SENDS_PER_DAY="100",
        OTP_SESSIONS_PER_CHAT_USER_PER_DAY="4",
        OTP_WRONG_PER_CHAT_USER_PER_DAY="6",
        OTP_FREEZE_AFTER_WRONG_PER_DAY="12",
    )
    return Api(await aiohttp_client(create_app(settings, clock=clock)))


async def test_otp_budget_per_attacker_and_freeze_until_staff_unfreeze(
    budget: Api, clock: ManualClock
) -> None:
    """One attacker, then many attackers, guessing one request's code for a day."""
    api = budget
    fresh = await make_request(api)
    tried = sent = refused = 0

    async def attack(who: dict[str, str]) -> None:
        nonlocal tried, sent, refused
        for _ in range(10):
            clock.advance(seconds=61)
            status, ch = await send_code(api, fresh, who)
            if status != 201:
                refused += 1
                continue
            sent += 1
            bad = wrong_code(last_code(api.ctx.settings, fresh.phone))
            for _ in range(2):
                tried += 1
                if (await verify_code(api, ch["challenge_id"], bad, who))[0] == 423:
                    break

    await attack(chat("attacker-1"))
    # One chat user: 3 sessions (6 wrong codes reach its cap), then refused.
    assert (sent, tried) == (3, 6), (sent, tried, refused)
    for i in range(2, 6):
        await attack(chat(f"attacker-{i}"))
    # 12 wrong codes in a day froze the request: every later send is refused, for everyone.
    assert tried == 12 and sent == 6, (sent, tried, refused)
    status, body = await send_code(api, fresh, chat("the-real-customer"))
    assert (status, body["error"]) == (423, "otp_frozen")
    status, body = await api.post(
        "/v1/signing-sessions",
        {"request_code": fresh.code, "document_ids": fresh.doc_ids, "channel": "sms", "consent": True},
    )
    assert (status, body["error"]) == (423, "otp_frozen")
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    assert "otp_frozen" in [e["action"] for e in trail["events"]]
    # Staff unfreeze; the customer can verify again.
    assert (await api.post(f"/v1/requests/{fresh.code}/otp-unfreeze", {"by": "lan"}))[1] == {"unfrozen": 1}
    await verified(api, fresh, chat("the-real-customer"))
    async with api.client.get("/v1/metrics", headers=api.headers) as r:
        metrics = await r.text()
    assert "cskh_otp_requests_frozen_total" in metrics
    print(
        f"OTP budget: {sent} codes sent, {tried} tried, {refused} sessions refused, 0 verified by an attacker"
    )


async def test_a_fresh_verification_code_confirms_one_signing(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("tg-signer")
    await verified(api, fresh, who, purpose="sign")
    sms = outbox_messages(api.ctx.settings, fresh.phone)[-1]["text"]
    assert "KÝ" in sms and "Hợp đồng mua bán điện sinh hoạt" in sms  # the code names the drafts
    await api.get(f"/v1/requests/{fresh.code}/documents", headers=who)
    body = {
        "request_code": fresh.code,
        "document_ids": fresh.doc_ids,
        "channel": "sms",
        "consent": True,
        "auth": "verification",
        "chat_channel": "telegram",
        "chat_user": "tg-signer",
    }
    status, result = await api.post("/v1/signing-sessions", body, headers=who)
    assert status == 200 and result["status"] == "signed" and len(result["documents"]) == 2
    sent = outbox_messages(api.ctx.settings, fresh.phone)
    assert [m["subject"] for m in sent] == ["Mã xác minh hồ sơ", "EVNCPC - Thông báo hồ sơ đã được ký"]
    assert "đã được ký" in sent[-1]["text"] and "1900 1909" in sent[-1]["text"]  # one code, then the notice
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    actions = [e["action"] for e in trail["events"]]
    assert actions.index("chat_verified") < actions.index("consent_given") < actions.index("document_signed")
    assert "otp_reused_from_verification" in actions


async def test_the_verification_code_serves_once_and_only_minutes_after(api: Api) -> None:
    fresh = await make_request(api, kinds=("hdmbd_sinh_hoat", "bb_thoa_thuan_dau_noi", "phuong_an_dau_noi"))
    who = chat("tg-late")
    await verified(api, fresh, who, purpose="sign")
    await api.get(f"/v1/requests/{fresh.code}/documents", headers=who)

    def body(ids: list[int]) -> dict[str, Any]:
        return {
            "request_code": fresh.code,
            "document_ids": ids,
            "channel": "sms",
            "consent": True,
            "auth": "verification",
            "chat_channel": "telegram",
            "chat_user": "tg-late",
        }

    assert (await api.post("/v1/signing-sessions", body(fresh.doc_ids[:1]), headers=who))[0] == 200
    status, result = await api.post("/v1/signing-sessions", body(fresh.doc_ids[1:2]), headers=who)
    assert (status, result["error"]) == (409, "verification_not_recent")  # used once
    other = await make_request(api)
    await verified(api, other, who, purpose="sign")
    await api.get(f"/v1/requests/{other.code}/documents", headers=who)
    api.ctx.clock.advance(seconds=601)  # type: ignore[attr-defined]
    late = {**body(other.doc_ids), "request_code": other.code}
    assert (await api.post("/v1/signing-sessions", late, headers=who))[1][
        "error"
    ] == "verification_not_recent"


async def test_sweeping_request_codes_from_one_conversation_is_stopped(api: Api) -> None:
    conv = {"X-Conversation-Id": "zalo:sweeper"}
    answers = {200: 0, 404: 0, 429: 0}
    for i in range(300):
        status, _ = await api.get(f"/v1/requests/PC05TK{9_000_000 + i:07d}", headers=conv)
        answers[status] = answers.get(status, 0) + 1
    # 10 misses per hour, then 429 for the rest of the hour.
    assert answers[429] >= 289 and answers[200] + answers[404] <= 11, answers
    print(f"code sweep: 300 lookups, {answers[404] + answers[200]} answered, {answers[429]} refused")


async def test_revised_draft_invalidates_old_links(api: Api) -> None:
    fresh = await make_request(api)
    _, docs = await api.get(f"/v1/requests/{fresh.code}/documents")
    old = docs["documents"][0]["original_url"].replace("http://testserver.local", "")
    async with api.client.get(old) as r:
        assert r.status == 200
    await api.post(f"/v1/documents/{fresh.doc_ids[0]}/revise")
    async with api.client.get(old) as r:
        assert r.status == 403 and "phiên bản cũ" in await r.text()
    _, docs = await api.get(f"/v1/requests/{fresh.code}/documents")
    async with api.client.get(
        docs["documents"][0]["original_url"].replace("http://testserver.local", "")
    ) as r:
        assert r.status == 200
    # Links live one hour by default.
    api.ctx.clock.advance(seconds=3601)  # type: ignore[attr-defined]
    async with api.client.get(
        docs["documents"][0]["original_url"].replace("http://testserver.local", "")
    ) as r:
        assert r.status == 403


@pytest.mark.parametrize("raw", ["²", "٣", "１２", "1²"])
async def test_unicode_digits_in_paths_and_queries_are_400_or_404(api: Api, raw: str) -> None:
    for path in (f"/v1/documents/{raw}/revise", f"/v1/documents/{raw}/verification"):
        async with api.client.post(path, headers=api.headers) as r:
            assert r.status in (400, 404, 405), path
        async with api.client.get(path, headers=api.headers) as r:
            assert r.status in (400, 404, 405), path
    async with api.client.get(f"/v1/documents/{raw}/file?expires={raw}&v={raw}&sig={'a' * 64}") as r:
        assert r.status == 403
    async with api.client.get(f"/v1/documents/1/file?expires={raw}&v=1&sig={'a' * 64}") as r:
        assert r.status == 403


async def test_forget_revokes_every_verification_of_the_chat_user(api: Api) -> None:
    first, second = await make_request(api), await make_request(api)
    who = chat("tg-forget")
    for fresh in (first, second):
        api.ctx.clock.advance(seconds=61)  # type: ignore[attr-defined]
        await verified(api, fresh, who)
    other = chat("tg-keeps")
    await verified(api, first, other)
    status, body = await api.post("/v1/chat-users/forget", headers={**who, "X-Conversation-Id": "tg-forget"})
    assert (status, body) == (200, {"revoked": 2})
    for fresh in (first, second):
        assert (await api.get(f"/v1/requests/{fresh.code}/documents", headers=who))[0] == 403
    assert (await api.get(f"/v1/requests/{first.code}/documents", headers=other))[0] == 200
    assert (await api.post("/v1/chat-users/forget"))[0] == 400  # needs the chat user


async def test_a_code_sent_to_view_never_confirms_a_signing(api: Api) -> None:
    """A code phished from the customer "to see the file" cannot sign: its SMS says so."""
    fresh = await make_request(api)
    who = chat("tg-phisher")
    await verified(api, fresh, who)  # purpose "view"
    assert "không dùng để ký" in outbox_messages(api.ctx.settings, fresh.phone)[-1]["text"]
    await api.get(f"/v1/requests/{fresh.code}/documents", headers=who)
    body = {
        "request_code": fresh.code,
        "document_ids": fresh.doc_ids,
        "channel": "sms",
        "consent": True,
        "auth": "verification",
        "chat_channel": "telegram",
        "chat_user": "tg-phisher",
    }
    status, result = await api.post("/v1/signing-sessions", body, headers=who)
    assert (status, result["error"]) == (409, "verification_not_recent")


async def test_the_zalo_form_never_tells_whether_a_typed_number_matches(api: Api) -> None:
    fresh = await make_request(api)
    who = chat("zl-guesser", "zalo")
    answers = []
    for phone in (fresh.phone, "0911111111", fresh.phone[:-1] + "9"):
        body = {"request_code": fresh.code, "phone": phone, "source": "zalo_user_info", "own_number": False}
        answers.append((await api.post("/v1/verifications/contact", body, headers=who))[1])
    assert (
        answers[0]
        == answers[1]
        == answers[2]
        == {"verified": False, "phone_matches": False, "reason": "not_guaranteed"}
    )


@pytest.mark.parametrize("ref", ["AAAAAAAAAAAAAAAA\x00", "AAAAAAAAAAAAAAA٣", "'; drop table x; --aaaa"])
async def test_a_crafted_candidate_ref_is_not_found(api: Api, ref: str) -> None:
    status, body = await api.get(f"/v1/candidates/{quote(ref)}", headers={"X-Conversation-Id": "c"})
    assert (status, body["error"]) == (404, "candidate_not_found")


async def test_an_older_database_gets_the_new_column(tmp_path: Path) -> None:
    """A signing database created before `verification_challenges.purpose` existed still starts."""
    import sqlite3

    from signing_service.db import Database

    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table verification_challenges (id varchar(64) primary key, state varchar(12))")
        conn.execute("insert into verification_challenges values ('x', 'pending')")
    database = Database(f"sqlite:///{db}")
    await database.create_schema()
    await database.create_schema()  # twice: nothing to add the second time
    await database.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select purpose from verification_challenges").fetchall() == [("view",)]
        assert conn.execute("select replaced_code_hash from verification_challenges").fetchall() == [(None,)]


async def _pending_signing(api: Api, fresh: Fresh, user: str) -> str:
    who = chat(user)
    await verified(api, fresh, who)
    await api.get(f"/v1/requests/{fresh.code}/documents", headers=who)
    body = {
        "request_code": fresh.code,
        "document_ids": fresh.doc_ids,
        "channel": "sms",
        "consent": True,
        "chat_channel": "telegram",
        "chat_user": user,
    }
    status, sess = await api.post("/v1/signing-sessions", body, headers=who)
    assert status == 201, sess
    return str(sess["session_id"])


@pytest.mark.parametrize("how", ["customer_unlinks", "staff_unlinks", "customer_erasure"])
async def test_a_revoked_verification_ends_its_pending_signing(api: Api, how: str) -> None:
    """Unlinking (by the customer or staff) or erasure cancels the chat user's pending signing: its
    code, already sent, no longer signs."""
    fresh = await make_request(api)
    user = f"tg-unlink-{how}"
    session_id = await _pending_signing(api, fresh, user)
    code = last_code(api.ctx.settings, fresh.phone)
    if how == "customer_unlinks":
        path, headers = f"/v1/requests/{fresh.code}/verification", {**api.headers, **chat(user)}
    elif how == "staff_unlinks":
        path, headers = f"/v1/requests/{fresh.code}/verification?by=lan", api.headers
    if how == "customer_erasure":
        status, _ = await api.post("/v1/chat-users/forget", headers={**chat(user), "X-Conversation-Id": user})
        assert status == 200
    else:
        async with api.client.delete(path, headers=headers) as r:
            assert r.status == 200
    status, body = await api.post(f"/v1/signing-sessions/{session_id}/verify", {"otp": code})
    assert (status, body["error"], body.get("state")) == (409, "session_finished", "cancelled")
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    revoked = [e for e in trail["events"] if e["action"] == "otp_revoked"]
    assert [(e.get("details") or {}).get("reason") for e in revoked] == [
        "customer_erasure" if how == "customer_erasure" else "verification_revoked"
    ]
    assert not [e for e in trail["events"] if e["action"] == "document_signed"]


async def test_unlinking_leaves_another_chat_users_signing_alone(api: Api) -> None:
    fresh = await make_request(api)
    session_id = await _pending_signing(api, fresh, "tg-signs-on")
    code = last_code(api.ctx.settings, fresh.phone)
    api.ctx.clock.advance(seconds=61)  # type: ignore[attr-defined]
    await verified(api, fresh, chat("tg-leaves"))
    async with api.client.delete(
        f"/v1/requests/{fresh.code}/verification", headers={**api.headers, **chat("tg-leaves")}
    ) as r:
        assert r.status == 200
    status, body = await api.post(f"/v1/signing-sessions/{session_id}/verify", {"otp": code})
    assert status == 200 and body["status"] == "signed", body
