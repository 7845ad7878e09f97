"""Draft PDFs, expiring links, amendments and staff revision, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import unicodedata
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pypdf import PdfReader

from signing_service.doc_kinds import DOC_KINDS
from signing_service.fonts import ensure_fonts
from signing_service.pdf import render_pdf

from .conftest import Api, make_request


def pdf_text(data: bytes) -> str:
    return unicodedata.normalize(
        "NFC", "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    )


async def fetch(api: Api, url: str) -> tuple[int, bytes, str]:
    """Links are used without the bearer token, as a customer's browser would."""
    parts = urlsplit(url)
    async with api.client.get(f"{parts.path}?{parts.query}") as r:
        return r.status, await r.read(), r.headers.get("Content-Type", "")


async def test_documents_list_links_and_pdf_content(api: Api) -> None:
    fresh = await make_request(api, name="Nguyễn Thị Ánh Tuyết")
    status, body = await api.get(f"/v1/requests/{fresh.code.lower()}/documents")
    assert status == 200
    docs = body["documents"]
    assert [d["kind"] for d in docs] == ["hdmbd_sinh_hoat", "bb_thoa_thuan_dau_noi"]
    assert {d["status_label"] for d in docs} == {"Chờ ký"}
    assert all(d["signed_url"] is None for d in docs)
    first = docs[0]
    assert first["original_url"].startswith("http://testserver.local/v1/documents/")
    status, data, ctype = await fetch(api, first["original_url"])
    assert status == 200 and ctype == "application/pdf"
    assert hashlib.sha256(data).hexdigest() == first["sha256"]
    text = pdf_text(data)
    for expected in (
        "HỢP ĐỒNG MUA BÁN ĐIỆN SINH HOẠT",
        "Nguyễn Thị Ánh Tuyết",
        "Điện lực Tam Kỳ",
        fresh.code,
        "27 Trần Cao Vân, P. An Mỹ",
    ):
        assert expected in text, expected
    # Listing again does not re-render: the hash (what a customer consents to) is stable.
    _, again = await api.get(f"/v1/requests/{fresh.code}/documents")
    assert [d["sha256"] for d in again["documents"]] == [d["sha256"] for d in docs]


def test_every_kind_renders_vietnamese_text(tmp_path: Path) -> None:
    fonts = ensure_fonts(tmp_path)
    decomposed = unicodedata.normalize("NFD", "Hoàng Thị Ngọc Diễm")  # input arriving as NFD
    data = {
        "title": "",
        "number": "PC05TK0000001/00001",
        "version": 2,
        "place": "Tam Kỳ",
        "day": "01",
        "month": "12",
        "year": 2026,
        "request_code": "PC05TK0000001",
        "received_date": "30/11/2026",
        "service_name": "Cấp điện mới hạ áp",
        "company": "PC Quảng Nam",
        "unit_name": "Điện lực Tam Kỳ",
        "unit_code": "PC05TK",
        "customer_name": decomposed,
        "id_number": "049",
        "customer_address": "Tam Kỳ",
        "supply_address": "Thôn Phú Sơn, Xã Hòa Khương",
        "phone": "0905000000",
        "email": None,
        "capacity_kw": 5,
        "meter_location": "cổng",
        "meter_serial": "TK1",
        "seal_no": "NP-1",
        "pole": "1/2",
        "station": "Tam Kỳ 1",
        "cable_m": 20,
        "committed_days": 3,
        "households": 2,
        "share_household_pct": 70,
        "share_business_pct": 30,
        "mv_line_m": 350,
        "transformer_kva": 160,
        "after_meter_m": 25,
    }
    for kind, title in DOC_KINDS.items():
        pdf = render_pdf(kind, {**data, "title": title}, datetime.now(timezone.utc), title, fonts)
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(pdf)
        # poppler's extraction, independent of the library that wrote the file
        out = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        text = unicodedata.normalize("NFC", out)
        assert title.upper() in text, kind
        assert "Hoàng Thị Ngọc Diễm" in text, kind
        assert "(bản hiệu chỉnh lần 1)" in text
        assert "Độc lập - Tự do - Hạnh phúc" in text


async def test_tampered_and_expired_links_get_a_403_page(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    fresh = await make_request(api)
    _, body = await api.get(f"/v1/requests/{fresh.code}/documents")
    url = body["documents"][0]["original_url"]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other_id = body["documents"][1]["id"]
    tampered = [
        f"{parts.path}?{urlencode({**q, 'sig': q['sig'][:-1] + ('0' if q['sig'][-1] != '0' else '1')})}",
        f"{parts.path}?{urlencode({**q, 'expires': int(q['expires']) + 3600})}",
        f"{parts.path}?{urlencode({**q, 'variant': 'signed'})}",
        f"/v1/documents/{other_id}/file?{parts.query}",
        f"{parts.path}?variant=original",
        f"{parts.path}?{urlencode({**q, 'sig': 'x' * 5000})}",
        f"/v1/documents/abc/file?{parts.query}",
    ]
    for path in tampered:
        async with api.client.get(path) as r:
            page = await r.text()
            assert r.status == 403, path
            assert r.content_type == "text/html"
            assert "Liên kết không hợp lệ" in page
    clock.advance(seconds=api.ctx.settings.link_ttl_seconds + 1)
    async with api.client.get(f"{parts.path}?{parts.query}") as r:
        assert r.status == 403 and "Liên kết đã hết hạn" in await r.text()


async def test_signed_variant_of_unsigned_document_is_not_found(api: Api) -> None:
    fresh = await make_request(api)
    await api.get(f"/v1/requests/{fresh.code}/documents")
    from signing_service.links import make_link

    s = api.ctx.settings
    url = make_link("", s.secret_key, fresh.doc_ids[0], "signed", int(api.ctx.clock.now().timestamp()) + 60)
    async with api.client.get(url) as r:
        assert r.status == 404 and "chưa được ký" in await r.text()


async def test_amendment_flow_and_staff_list(api: Api) -> None:
    fresh = await make_request(api)
    doc_id = fresh.doc_ids[0]
    text = "  Sai tên đệm:\r\n  phải là “Thu Hằng”\x00\x07 \u202e  "
    status, body = await api.post(
        f"/v1/requests/{fresh.code}/amendments", {"document_id": doc_id, "text": text, "chat_channel": "zalo"}
    )
    assert status == 201
    assert re.fullmatch(r"HC-\d{8}-\d{4,}", body["reference"])
    assert body == {"reference": body["reference"], "document_id": doc_id, "status": "amendment_requested"}
    _, docs = await api.get(f"/v1/requests/{fresh.code}/documents")
    by_id = {d["id"]: d for d in docs["documents"]}
    assert by_id[doc_id]["status_label"] == "Yêu cầu hiệu chỉnh"
    _, staff = await api.get("/v1/amendments", params={"request_code": fresh.code})
    (item,) = staff["amendments"]
    assert item["reference"] == body["reference"]
    assert item["text"] == "Sai tên đệm:\nphải là “Thu Hằng”"
    assert item["document_title"] == "Hợp đồng mua bán điện sinh hoạt" and item["status"] == "open"
    _, audit = await api.get(f"/v1/requests/{fresh.code}/audit")
    assert [e["action"] for e in audit["events"]] == ["amendment_requested"]
    assert audit["events"][0]["channel"] == "zalo"
    assert audit["events"][0]["document_sha256"] == by_id[doc_id]["sha256"]

    # Staff re-issue the draft: a new version with a new hash, awaiting signature again.
    status, revised = await api.post(f"/v1/documents/{doc_id}/revise")
    assert status == 200
    assert revised["status"] == "awaiting_signature" and revised["version"] == 2
    assert revised["sha256"] != by_id[doc_id]["sha256"]
    _, staff = await api.get("/v1/amendments", params={"request_code": fresh.code, "status": "resolved"})
    assert len(staff["amendments"]) == 1
    status, data, _ = await fetch(api, revised["original_url"])
    assert "(bản hiệu chỉnh lần 1)" in pdf_text(data)


async def test_amendment_bad_inputs(api: Api) -> None:
    fresh = await make_request(api)
    other = await make_request(api)
    path = f"/v1/requests/{fresh.code}/amendments"
    doc = fresh.doc_ids[0]
    cases = [
        ({"document_id": doc, "text": " ab \x00 "}, 400, "text_too_short"),
        ({"document_id": doc, "text": "x" * 1001}, 400, "text_too_long"),
        ({"document_id": doc, "text": "x" * 5000}, 400, "invalid_field"),
        ({"document_id": str(doc), "text": "Sai địa chỉ"}, 400, "invalid_field"),
        ({"document_id": True, "text": "Sai địa chỉ"}, 400, "invalid_field"),
        ({"document_id": doc, "text": ["Sai"]}, 400, "invalid_field"),
        ({"document_id": doc, "text": "Sai địa chỉ", "chat_channel": "fax"}, 400, "invalid_field"),
        ({"document_id": other.doc_ids[0], "text": "Sai địa chỉ"}, 404, "document_not_found"),
        ({"text": "Sai địa chỉ"}, 400, "invalid_field"),
        ([1, 2], 400, "invalid_json"),
    ]
    for body, code, error in cases:
        status, got = await api.post(path, body)
        assert (status, got["error"]) == (code, error), body
    async with api.client.post(path, data=b"{not json", headers=api.headers) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid_json"
    async with api.client.post(path, data=b"{" + b" " * 70000 + b"}", headers=api.headers) as r:
        assert r.status == 413 and (await r.json())["error"] == "payload_too_large"
    status, got = await api.post("/v1/requests/PC05TK99/amendments", {"document_id": doc, "text": "Sai tên"})
    assert (status, got["error"]) == (400, "invalid_request_code")


async def test_demo_signed_documents_verify(api: Api) -> None:
    _, body = await api.get("/v1/requests/PC04HC0004567/documents")
    assert {d["status"] for d in body["documents"]} == {"signed"}
    doc = body["documents"][0]
    status, check = await api.get(f"/v1/documents/{doc['id']}/verification")
    assert status == 200
    assert check["signed"] and check["intact"] and check["valid"] and check["trusted"]
    assert check["signer"] == "Trần Thị Bích Ngọc"
    status, data, _ = await fetch(api, doc["signed_url"])
    assert status == 200 and hashlib.sha256(data).hexdigest() == check["signed_sha256"]
    status, err = await api.get("/v1/documents/99999999/verification")
    assert (status, err["error"]) == (404, "document_not_found")


@pytest.mark.parametrize("path", ["/v1/documents/1/verification", "/v1/amendments", "/v1/signing-sessions"])
async def test_document_endpoints_need_the_token(api: Api, path: str) -> None:
    async with api.client.request("POST" if "sessions" in path else "GET", path) as r:
        assert r.status == 401


async def test_a_chat_users_amendment_is_audited_under_that_chat_user(api: Api) -> None:
    """The bot names the customer in the headers (the identity verification checks); the audit
    trail records that identity, not a body field the bot does not send."""
    from .test_verification import chat, verified

    fresh = await make_request(api)
    who = chat("tg-amends")
    await verified(api, fresh, who)
    body = {"document_id": fresh.doc_ids[0], "text": "Sai số nhà, đúng là 12", "chat_channel": "zalo"}
    status, _ = await api.post(f"/v1/requests/{fresh.code}/amendments", body, headers=who)
    assert status == 201
    _, trail = await api.get(f"/v1/requests/{fresh.code}/audit")
    (event,) = [e for e in trail["events"] if e["action"] == "amendment_requested"]
    assert (event["actor"], event["channel"]) == ("customer:telegram:tg-amends", "telegram")
