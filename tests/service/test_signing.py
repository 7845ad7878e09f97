"""OTP signing sessions end to end: every OTP rule, batch all-or-nothing, concurrency, PAdES validity."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select, update

from signing_service.models import Document, SigningSession

from .conftest import Api, Fresh, last_code, make_request, outbox_messages, wrong_code


async def start(
    api: Api, fresh: Fresh, channel: str = "sms", ids: list[int] | None = None
) -> tuple[int, Any]:
    await api.get(f"/v1/requests/{fresh.code}/documents")  # the customer views the drafts first
    return await api.post(
        "/v1/signing-sessions",
        {
            "request_code": fresh.code,
            "document_ids": ids or fresh.doc_ids,
            "channel": channel,
            "consent": True,
            "chat_channel": "telegram",
            "chat_user": f"tg-{fresh.code}",
        },
    )


async def verify(api: Api, sid: str, code: str) -> tuple[int, Any]:
    return await api.post(f"/v1/signing-sessions/{sid}/verify", {"otp": code})


async def doc_rows(api: Api, ids: list[int]) -> list[Document]:
    async with api.ctx.db.read() as s:
        return list(
            (await s.execute(select(Document).where(Document.id.in_(ids)).order_by(Document.id))).scalars()
        )


def load_ca(ca_path: Path) -> asn1_x509.Certificate:
    _, _, der = pem.unarmor(ca_path.read_bytes())
    return asn1_x509.Certificate.load(der)


async def validate_with_dev_ca(pdf: bytes, ca_path: Path) -> Any:
    """pyHanko's validator with only the development CA as trust root (independent of the service)."""
    vc = ValidationContext(trust_roots=[load_ca(ca_path)], allow_fetching=False)
    (sig,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return sig, await async_validate_pdf_signature(sig, vc)


async def test_batch_signed_by_sms_otp(api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fresh = await make_request(api, name="Đặng Thị Ngọc Ánh")
    status, sess = await start(api, fresh)
    assert status == 201
    assert (
        sess["channel"] == "sms" and sess["destination_masked"] == fresh.phone[:3] + "****" + fresh.phone[-3:]
    )
    assert [d["id"] for d in sess["documents"]] == fresh.doc_ids
    assert sess["attempts_left"] == 5
    (msg,) = outbox_messages(api.ctx.settings, fresh.phone)
    assert set(msg) == {"channel", "to", "subject", "text", "created_at", "attachments"}
    assert msg["attachments"] == []  # an OTP carries no file
    assert msg["channel"] == "sms" and "Mã xác thực (OTP)" in msg["text"] and "5 phút" in msg["text"]
    code = last_code(api.ctx.settings, fresh.phone)

    status, done = await verify(api, sess["session_id"], f"{code[:3]} {code[3:]}")
    assert status == 200, done
    assert done["status"] == "signed" and [d["id"] for d in done["documents"]] == fresh.doc_ids

    drafts = {d["id"]: d for d in (await api.get(f"/v1/requests/{fresh.code}/documents"))[1]["documents"]}
    ca_path = api.ctx.settings.seal_ca_path
    for item in done["documents"]:
        parts = urlsplit(item["signed_url"])
        async with api.client.get(f"{parts.path}?{parts.query}") as r:
            assert r.status == 200
            signed = await r.read()
        sig, st = await validate_with_dev_ca(signed, ca_path)
        assert st.intact and st.valid and st.trusted and st.bottom_line
        assert str(sig.sig_object["/Name"]) == "Đặng Thị Ngọc Ánh"
        reason = str(sig.sig_object["/Reason"])
        assert sess["session_id"] in reason and "SMS" in reason and drafts[item["id"]]["sha256"] in reason
        assert "telegram" in str(sig.sig_object["/Location"])
        # The draft's bytes are the signed revision's prefix: the customer signed exactly what they saw.
        async with api.client.get(
            urlsplit(drafts[item["id"]]["original_url"]).path
            + "?"
            + urlsplit(drafts[item["id"]]["original_url"]).query
        ) as r:
            draft = await r.read()
        assert signed.startswith(draft) and hashlib.sha256(draft).hexdigest() == drafts[item["id"]]["sha256"]
        path = tmp_path / f"{item['id']}.pdf"
        path.write_bytes(signed)
        proc = await asyncio.create_subprocess_exec("pdfsig", str(path), stdout=asyncio.subprocess.PIPE)
        out = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
        assert "Signature Validation: Signature is Valid." in out
        assert "EVNCPC - Con dấu điện tử (dev)" in out and "Total document signed" in out
        # No NSS tool here to import the dev CA: poppler reports it untrusted, but not invalid or expired.
        assert (
            "Certificate Validation: Certificate issuer isn't Trusted." in out
            or "Certificate is Trusted." in out
        )
        status, check = await api.get(f"/v1/documents/{item['id']}/verification")
        assert check["signed"] and check["intact"] and check["valid"] and check["trusted"]
        assert check["signer"] == "Đặng Thị Ngọc Ánh" and check["stored_hash_matches"]
    assert {d["status_label"] for d in drafts.values()} == {"Đã ký"}

    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    actions = [e["action"] for e in trail["events"]]
    assert actions == [
        "consent_given",
        "consent_given",
        "otp_sent",
        "otp_verified",
        "document_signed",
        "document_signed",
    ]
    signed_events = [e for e in trail["events"] if e["action"] == "document_signed"]
    assert {e["document_sha256"] for e in signed_events} == {d["sha256"] for d in drafts.values()}
    assert all(
        e["channel"] == "sms" and e["details"]["session_id"] == sess["session_id"] for e in signed_events
    )
    consent = trail["events"][0]
    assert consent["actor"] == f"customer:telegram:tg-{fresh.code}"
    # One actor format (signing_service/audit.py): the chat user who consented is the one who signed.
    assert {e["actor"] for e in signed_events} == {consent["actor"]}
    assert {e["actor"] for e in trail["events"]} == {consent["actor"], "system"}
    assert consent["details"]["statement"] == "Tôi đã đọc, hiểu và đồng ý với dự thảo"
    # Never in the service's logs (any level): the code, the full phone number, the token.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("signing_service"))
    assert "OTP sent for session" in ours
    assert code not in ours and fresh.phone not in ours and api.ctx.settings.token not in ours

    # Single use: the same code again does nothing.
    status, again = await verify(api, sess["session_id"], code)
    assert (status, again["error"]) == (409, "session_finished")
    status, again = await start(api, fresh)
    assert (status, again["error"]) == (409, "document_not_awaiting")


async def test_email_channel_goes_to_the_registered_address(api: Api) -> None:
    fresh = await make_request(api, kinds=("phu_luc_sdbs",))
    status, sess = await start(api, fresh, channel="email")
    assert status == 201
    assert sess["destination_masked"].endswith("@example.com") and "*" in sess["destination_masked"]
    (msg,) = outbox_messages(api.ctx.settings, fresh.email or "")
    assert msg["channel"] == "email" and "Phụ lục sửa đổi, bổ sung hợp đồng mua bán điện" in msg["text"]
    status, _ = await verify(api, sess["session_id"], last_code(api.ctx.settings, fresh.email or ""))
    assert status == 200
    no_mail = await make_request(api, email=False)
    status, err = await start(api, no_mail, channel="email")
    assert (status, err["error"]) == (400, "no_contact")


async def test_session_input_checks(api: Api) -> None:
    fresh = await make_request(api)
    other = await make_request(api)
    base = {"request_code": fresh.code, "document_ids": fresh.doc_ids, "channel": "sms", "consent": True}
    cases = [
        ({**base, "consent": False}, 400, "consent_required"),
        ({**base, "consent": "true"}, 400, "consent_required"),
        ({k: v for k, v in base.items() if k != "consent"}, 400, "consent_required"),
        ({**base, "document_ids": []}, 400, "no_documents"),
        ({**base, "document_ids": "1,2"}, 400, "invalid_field"),
        ({**base, "document_ids": [1.5]}, 400, "invalid_field"),
        ({**base, "document_ids": list(range(1, 12))}, 400, "invalid_field"),
        ({**base, "channel": "zalo"}, 400, "invalid_field"),
        ({**base, "request_code": "PC05"}, 400, "invalid_request_code"),
        ({**base, "request_code": 123}, 400, "invalid_field"),
        ({**base, "request_code": "PC05TK9999997"}, 404, "request_not_found"),
        ({**base, "document_ids": other.doc_ids}, 404, "document_not_found"),
        ({**base, "chat_user": "u" * 129}, 400, "invalid_field"),
    ]
    for body, code, error in cases:
        status, got = await api.post("/v1/signing-sessions", body)
        assert (status, got["error"]) == (code, error), body
    # A document with an amendment request is not signable until staff re-issue it.
    await api.post(
        f"/v1/requests/{fresh.code}/amendments", {"document_id": fresh.doc_ids[1], "text": "Sai tên"}
    )
    status, got = await api.post("/v1/signing-sessions", base)
    assert (status, got["error"], got["document_id"]) == (409, "document_not_awaiting", fresh.doc_ids[1])
    for sid in ("short", "x" * 65, "bad$chars-but-long-enough"):
        status, got = await verify(api, sid, "123456")
        assert (status, got["error"]) == (404, "session_not_found"), sid
    status, got = await verify(api, "A" * 32, "123456")
    assert (status, got["error"]) == (404, "session_not_found")
    assert not outbox_messages(api.ctx.settings, fresh.phone)


async def test_wrong_codes_lock_the_session(api: Api) -> None:
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    sid = sess["session_id"]
    code = last_code(api.ctx.settings, fresh.phone)
    wrong = wrong_code(code)
    for bad in ("12345", "1234567", "abcdef", 123456, None):
        status, got = await api.post(f"/v1/signing-sessions/{sid}/verify", {"otp": bad})
        assert (status, got["error"]) == (400, "invalid_otp_format")  # not counted as a try
    for left in (4, 3, 2, 1):
        status, got = await verify(api, sid, wrong)
        assert (status, got["error"], got["attempts_left"]) == (400, "wrong_otp", left)
    status, got = await verify(api, sid, wrong)
    assert (status, got["error"]) == (423, "session_locked")
    async with api.ctx.db.read() as s:  # the code itself is stored nowhere
        row = await s.get(SigningSession, sid)
        assert row is not None and row.code_hash is None and row.attempts == 5
        assert code not in repr([getattr(row, c.key) for c in SigningSession.__table__.columns])
    status, got = await verify(api, sid, code)  # even the right code is refused now
    assert (status, got["error"]) == (423, "session_locked")
    status, got = await api.post(f"/v1/signing-sessions/{sid}/resend")
    assert (status, got["error"]) == (423, "session_locked")
    assert {d.status for d in await doc_rows(api, fresh.doc_ids)} == {"awaiting_signature"}
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    assert Counter(e["action"] for e in trail["events"])["otp_failed"] == 5
    assert "session_locked" in [e["action"] for e in trail["events"]]


async def test_code_expires_after_five_minutes(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    code = last_code(api.ctx.settings, fresh.phone)
    clock.advance(seconds=299)
    status, got = await verify(api, sess["session_id"], wrong_code(code))
    assert status == 400  # still valid at 4:59
    clock.advance(seconds=2)
    status, got = await verify(api, sess["session_id"], code)
    assert (status, got["error"]) == (410, "otp_expired")
    status, again = await api.post(f"/v1/signing-sessions/{sess['session_id']}/resend")
    assert status == 200
    new_code = last_code(api.ctx.settings, fresh.phone)
    status, got = await verify(api, sess["session_id"], new_code)
    assert status == 200 and got["status"] == "signed"


async def test_resend_cooldown_new_code_revokes_old_and_hourly_cap(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    sid = sess["session_id"]
    first = last_code(api.ctx.settings, fresh.phone)
    clock.advance(seconds=30)
    async with api.client.post(f"/v1/signing-sessions/{sid}/resend", headers=api.headers) as r:
        got = await r.json()
        assert (r.status, got["error"]) == (429, "resend_cooldown")
        assert got["retry_after"] == 30 and r.headers["Retry-After"] == "30"
    sends = 1
    codes = [first]
    for _ in range(4):  # 5 sends per hour per request in total
        clock.advance(seconds=61)
        status, body = await api.post(f"/v1/signing-sessions/{sid}/resend")
        assert status == 200, body
        sends += 1
        codes.append(last_code(api.ctx.settings, fresh.phone))
    assert sends == 5 and len(outbox_messages(api.ctx.settings, fresh.phone)) == 5
    clock.advance(seconds=61)
    status, got = await api.post(f"/v1/signing-sessions/{sid}/resend")
    assert (status, got["error"]) == (429, "send_limit") and 0 < got["retry_after"] <= 3600
    # A new session for the same request counts against the same cap.
    status, got = await start(api, fresh)
    assert (status, got["error"]) == (429, "send_limit")
    # Older codes were revoked by each new one (unless the 6 random digits happen to repeat).
    if codes[0] != codes[-1]:
        status, got = await verify(api, sid, codes[0])
        assert (status, got["error"]) == (400, "wrong_otp")
    clock.advance(hours=1)
    status, body = await api.post(f"/v1/signing-sessions/{sid}/resend")
    assert status == 200
    status, done = await verify(api, sid, last_code(api.ctx.settings, fresh.phone))
    assert status == 200 and done["status"] == "signed"


async def test_the_code_a_resend_replaced_is_called_replaced_not_wrong(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    sid = sess["session_id"]
    old = last_code(api.ctx.settings, fresh.phone)
    clock.advance(seconds=61)
    status, _ = await api.post(f"/v1/signing-sessions/{sid}/resend")
    assert status == 200
    new = last_code(api.ctx.settings, fresh.phone)
    if old == new:  # the six random digits repeated: nothing was replaced
        return
    for _ in range(6):  # more than the five tries: typing the old code back never locks the session
        status, got = await verify(api, sid, old)
        assert (status, got["error"]) == (400, "otp_replaced")
    status, got = await verify(api, sid, wrong_code(new))
    assert (status, got["error"], got["attempts_left"]) == (400, "wrong_otp", 4)
    status, done = await verify(api, sid, new)
    assert status == 200 and done["status"] == "signed"


async def test_new_session_revokes_the_previous_one(api: Api) -> None:
    fresh = await make_request(api)
    _, first = await start(api, fresh)
    old_code = last_code(api.ctx.settings, fresh.phone)
    _, second = await start(api, fresh, ids=fresh.doc_ids[:1])
    status, got = await verify(api, first["session_id"], old_code)
    assert (status, got["error"], got["state"]) == (409, "session_finished", "cancelled")
    status, got = await verify(api, second["session_id"], last_code(api.ctx.settings, fresh.phone))
    assert status == 200
    rows = await doc_rows(api, fresh.doc_ids)
    assert [d.status for d in rows] == ["signed", "awaiting_signature"]  # only what was consented to


async def test_changed_draft_is_refused(api: Api) -> None:
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    code = last_code(api.ctx.settings, fresh.phone)
    # Staff re-issue one draft after the customer consented: the consent no longer matches.
    status, _ = await api.post(f"/v1/documents/{fresh.doc_ids[1]}/revise")
    assert status == 200
    status, got = await verify(api, sess["session_id"], code)
    assert (status, got["error"], got["document_id"]) == (409, "document_changed", fresh.doc_ids[1])
    assert {d.status for d in await doc_rows(api, fresh.doc_ids)} == {"awaiting_signature"}
    assert all(d.signed_sha256 is None for d in await doc_rows(api, fresh.doc_ids))

    # Bytes changed behind the stored hash (storage tampering) are caught as well.
    _, sess = await start(api, fresh)
    async with api.ctx.db.write() as s:
        await s.execute(
            update(Document).where(Document.id == fresh.doc_ids[0]).values(pdf=b"%PDF-1.4 forged")
        )
    status, got = await verify(api, sess["session_id"], last_code(api.ctx.settings, fresh.phone))
    assert (status, got["error"]) == (409, "document_changed")
    assert {d.status for d in await doc_rows(api, fresh.doc_ids)} == {"awaiting_signature"}


async def test_batch_failure_leaves_nothing_signed(api: Api) -> None:
    fresh = await make_request(api, kinds=("hdmbd_sinh_hoat", "bb_thoa_thuan_dau_noi", "bb_treo_thao"))
    await api.get(f"/v1/requests/{fresh.code}/documents")
    # The last draft is not a PDF the seal can process (e.g. a broken upload); its hash is consistent,
    # so the session binds to it and the failure happens while sealing, after the first two succeeded.
    broken = b"%PDF-1.7\n% broken draft without objects\n%%EOF\n"
    async with api.ctx.db.write() as s:
        await s.execute(
            update(Document)
            .where(Document.id == fresh.doc_ids[-1])
            .values(pdf=broken, sha256=hashlib.sha256(broken).hexdigest())
        )
    _, sess = await api.post(
        "/v1/signing-sessions",
        {"request_code": fresh.code, "document_ids": fresh.doc_ids, "channel": "sms", "consent": True},
    )
    status, got = await verify(api, sess["session_id"], last_code(api.ctx.settings, fresh.phone))
    assert (status, got["error"]) == (500, "signing_failed")
    assert "Traceback" not in got["message"]
    rows = await doc_rows(api, fresh.doc_ids)
    assert [d.status for d in rows] == ["awaiting_signature"] * 3
    assert all(d.signed_sha256 is None and d.signed_at is None for d in rows)
    async with api.ctx.db.read() as s:
        state = await s.execute(select(SigningSession.state).where(SigningSession.id == sess["session_id"]))
        assert state.scalar_one() == "failed"
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    actions = [e["action"] for e in trail["events"]]
    assert "signing_failed" in actions and "document_signed" not in actions


async def test_parallel_verifies_sign_exactly_once(api: Api) -> None:
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    code = last_code(api.ctx.settings, fresh.phone)
    results = await asyncio.gather(*(verify(api, sess["session_id"], code) for _ in range(20)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 409: 19}, statuses
    assert all(body["error"] == "session_finished" for status, body in results if status == 409)
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    assert Counter(e["action"] for e in trail["events"])["document_signed"] == len(fresh.doc_ids)
    rows = await doc_rows(api, fresh.doc_ids)
    assert {d.status for d in rows} == {"signed"}


async def test_parallel_wrong_codes_never_exceed_five_tries(api: Api) -> None:
    fresh = await make_request(api)
    _, sess = await start(api, fresh)
    wrong = f"{(int(last_code(api.ctx.settings, fresh.phone)) + 7) % 10**6:06d}"
    results = await asyncio.gather(*(verify(api, sess["session_id"], wrong) for _ in range(20)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {400: 4, 423: 16}, statuses
    async with api.ctx.db.read() as s:
        row = await s.get(SigningSession, sess["session_id"])
        assert row is not None and row.attempts == 5 and row.state == "locked"


async def test_parallel_session_creation_respects_the_send_cap(api: Api) -> None:
    fresh = await make_request(api)
    await api.get(f"/v1/requests/{fresh.code}/documents")
    body = {"request_code": fresh.code, "document_ids": fresh.doc_ids, "channel": "sms", "consent": True}
    results = await asyncio.gather(*(api.post("/v1/signing-sessions", body) for _ in range(8)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 5, 429: 3}, statuses
    assert len(outbox_messages(api.ctx.settings, fresh.phone)) == 5
    async with api.ctx.db.read() as s:
        states = Counter(
            (
                await s.execute(
                    select(SigningSession.state)
                    .join(Document, Document.id == fresh.doc_ids[0])
                    .where(SigningSession.id.in_([b["session_id"] for st, b in results if st == 201]))
                )
            ).scalars()
        )
    assert states == {"pending": 1, "cancelled": 4}  # only the newest session's code is alive
