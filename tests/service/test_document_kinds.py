"""Issue 17: every document kind renders through the service, the limits file, the new services' demo rows."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

from signing_service.doc_kinds import DOC_KINDS
from signing_service.services import (
    DEFAULT_LIMITS_PATH,
    SERVICE_TYPES,
    build_service_types,
    limits_path,
    load_limits,
)
from signing_service.units import UNITS

from .conftest import Api, make_request

ROOT = Path(__file__).resolve().parents[2]
NAME = "Trịnh Đức Quỳnh Hương"
COMPANY = "PC Quảng Nam"  # the company of PC05TK, the unit of `make_request`


async def fetch_pdf(api: Api, url: str) -> bytes:
    """A document link, opened without the bearer token as a customer's browser would."""
    parts = urlsplit(url)
    async with api.client.get(f"{parts.path}?{parts.query}") as r:
        assert r.status == 200 and r.content_type == "application/pdf", url
        return await r.read()


def pdf_to_text(path: Path) -> str:
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return unicodedata.normalize("NFC", out)


def assert_pages_render(path: Path) -> None:
    """poppler rasterises the draft: at least one page, of A4 shape, with ink on it."""
    prefix = path.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(path), str(prefix)], check=True, capture_output=True)
    pages = sorted(path.parent.glob(f"{prefix.name}-*.png"))
    assert pages, path.name
    with Image.open(pages[0]) as img:
        width, height = img.size
        assert 350 < width < 500 and 1.3 < height / width < 1.5, (path.name, img.size)  # A4 at 50 dpi
        grey = img.convert("L")
        histogram = grey.histogram()
        dark = sum(histogram[:128])  # pixels of text
        assert grey.getextrema()[0] < 64, path.name
        assert dark > 0.005 * width * height, (path.name, dark)


async def test_every_kind_renders_through_the_documents_api(api: Api, tmp_path: Path) -> None:
    assert len(DOC_KINDS) == 11
    for kind in DOC_KINDS:
        assert (ROOT / "signing_service" / "templates" / f"{kind}.txt.j2").is_file(), kind
    fresh = await make_request(api, kinds=tuple(DOC_KINDS), name=NAME)
    status, body = await api.get(f"/v1/requests/{fresh.code}/documents")
    assert status == 200
    docs = body["documents"]
    assert sorted(d["kind"] for d in docs) == sorted(DOC_KINDS)
    for doc in docs:
        kind = doc["kind"]
        assert doc["title"] == DOC_KINDS[kind]
        path = tmp_path / f"{kind}.pdf"
        path.write_bytes(await fetch_pdf(api, doc["original_url"]))
        assert_pages_render(path)
        text = pdf_to_text(path)
        for expected in (
            NAME,
            fresh.code,
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            COMPANY.upper(),
            "Trang 1/",
            DOC_KINDS[kind].upper(),
        ):
            assert expected in text, (kind, expected)
        # Every figure is filled from the request: no blank left for a hand-written value.
        assert "...." not in text, kind


# Services added for issue 17: a named demo request each, with the new document kinds awaiting signature.
NEW_SERVICE_DEMOS = {
    "purpose_change": ("PC05TK0000901", "bb_ty_le_muc_dich"),
    "quota_change": ("PC05TB0000902", "bb_so_ho_chung_cong_to"),
    "info_change": ("PC05TK0000903", "phu_luc_sdbs"),
    "mv_customer_supply": ("PC10NS0000904", "hd_dau_tu_cong_trinh"),
    "lv_new_supply": ("PC05TK0000905", "hd_lap_dat_sau_cong_to"),
}


async def test_new_services_have_demo_requests(api: Api, tmp_path: Path) -> None:
    areas = {code: area for code, _name, _company, area in UNITS}
    for service, (code, kind) in NEW_SERVICE_DEMOS.items():
        status, body = await api.get(f"/v1/requests/{code}")
        assert status == 200, code
        assert body["service_type"] == service
        assert body["service_name"] == SERVICE_TYPES[service].name
        assert body["committed_working_days"] == SERVICE_TYPES[service].committed_days(areas[code[:6]])
        assert body["current_step"]["key"] == "contract_signing"
        assert [s["key"] for s in body["steps"]] == list(SERVICE_TYPES[service].steps)
        assert body["documents_awaiting_signature"] >= 1
        status, docs = await api.get(f"/v1/requests/{code}/documents")
        assert status == 200
        by_kind = {d["kind"]: d for d in docs["documents"]}
        assert by_kind[kind]["status"] == "awaiting_signature", code
        path = tmp_path / f"{code}-{kind}.pdf"
        path.write_bytes(await fetch_pdf(api, by_kind[kind]["original_url"]))
        text = pdf_to_text(path)
        assert DOC_KINDS[kind].upper() in text and code in text, code
        assert "...." not in text, code
    new_kinds = {
        "hd_dau_tu_cong_trinh",
        "bb_ty_le_muc_dich",
        "bb_so_ho_chung_cong_to",
        "hd_lap_dat_sau_cong_to",
    }
    assert new_kinds <= {kind for _code, kind in NEW_SERVICE_DEMOS.values()}
    # The two medium-voltage services are told apart by name.
    assert SERVICE_TYPES["mv_new_supply"].name != SERVICE_TYPES["mv_customer_supply"].name
    assert "ngành điện đầu tư" in SERVICE_TYPES["mv_new_supply"].name
    assert "khách hàng đầu tư" in SERVICE_TYPES["mv_customer_supply"].name


# Limits before they moved to the data file: unchanged for the services that existed then.
EARLIER_LIMITS = {
    "lv_new_supply": (3, 5),
    "mv_new_supply": (7, 10),
    "capacity_change": (3, 5),
    "meter_relocation": (5, 7),
    "contract_renewal": (2, 2),
    "owner_change": (3, 3),
    "contract_termination": (3, 3),
}


def test_limits_file_gives_every_service_a_sourced_or_placeholder_limit() -> None:
    assert limits_path({}) == DEFAULT_LIMITS_PATH
    limits = load_limits(DEFAULT_LIMITS_PATH, SERVICE_TYPES)
    assert set(limits) == set(SERVICE_TYPES)
    assert len(SERVICE_TYPES) == 11
    for key, limit in limits.items():
        assert limit.town_days >= 1 and limit.rural_days >= 1, key
        assert (limit.source is not None) != limit.placeholder, key
        if limit.placeholder:
            assert limit.note and "to be confirmed by the power company" in limit.note, key
        assert (SERVICE_TYPES[key].town_days, SERVICE_TYPES[key].rural_days) == (
            limit.town_days,
            limit.rural_days,
        )
    for key, days in EARLIER_LIMITS.items():
        assert (limits[key].town_days, limits[key].rural_days) == days, key
    lv = limits["lv_new_supply"]
    assert not lv.placeholder and lv.source and "seeds/003_c9bc57c39f79a369.txt" in lv.source
    assert lv.quote and "không quá 3 ngày làm việc" in lv.quote and "không quá 5 ngày làm việc" in lv.quote
    # The quote is the seed's own words (where the seeds are available).
    seed = Path("/work/shared/seeds/003_c9bc57c39f79a369.txt")
    if seed.is_file():
        assert " ".join(lv.quote.split()) in " ".join(seed.read_text(encoding="utf-8").split())
    assert [k for k, v in limits.items() if not v.placeholder] == ["lv_new_supply"]


def entry(*lines: str) -> str:
    """One service's YAML entry from its `field: value` lines."""
    return "".join(f"    {line}\n" for line in lines)


def _valid_entries() -> dict[str, str]:
    return {key: entry("town_days: 4", "rural_days: 6", "source: Quyết định của PC") for key in SERVICE_TYPES}


def _write(path: Path, entries: dict[str, str]) -> Path:
    path.write_text(
        "services:\n" + "".join(f"  {key}:\n{body}" for key, body in entries.items()), encoding="utf-8"
    )
    return path


def test_operator_limits_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path / "limits.yml", _valid_entries())
    assert limits_path({"SERVICE_LIMITS_PATH": f" {path} "}) == path
    services = build_service_types(path)
    assert list(services) == list(SERVICE_TYPES)
    assert all((s.town_days, s.rural_days) == (4, 6) for s in services.values())
    assert services["quota_change"].committed_days("rural") == 6
    assert services["quota_change"].steps == SERVICE_TYPES["quota_change"].steps


PLACEHOLDER = "placeholder: true"


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("quota_change", None, r"service 'quota_change' is missing"),
        (
            "purpose_change",
            entry("town_days: 0", "rural_days: 3", PLACEHOLDER),
            r"'purpose_change'.*town_days",
        ),
        ("info_change", entry("town_days: 2", "rural_days: '2'", PLACEHOLDER), r"'info_change'.*rural_days"),
        ("owner_change", entry("town_days: 2.5", "rural_days: 3", PLACEHOLDER), r"'owner_change'.*town_days"),
        (
            "owner_change",
            entry("town_days: true", "rural_days: 3", PLACEHOLDER),
            r"'owner_change'.*town_days",
        ),
        (
            "lv_new_supply",
            entry("town_days: 3", "rural_days: -5", "source: x"),
            r"'lv_new_supply'.*rural_days",
        ),
        (
            "capacity_change",
            entry("town_days: 3", "rural_days: 5"),
            r"'capacity_change'.*source.*placeholder",
        ),
        (
            "capacity_change",
            entry("town_days: 3", "rural_days: 5", "placeholder: 'yes'"),
            r"'capacity_change'.*placeholder must",
        ),
        (
            "meter_relocation",
            entry("town_days: 3", "rural_days: 5", "source: ''"),
            r"'meter_relocation'.*source",
        ),
        (
            "meter_relocation",
            entry("town_days: 3", "rural_days: 5", "sourse: x"),
            r"'meter_relocation'.*sourse",
        ),
        ("no_such_service", entry("town_days: 3", "rural_days: 5", "source: x"), r"unknown service.*no_such"),
    ],
)
def test_malformed_limits_file_is_refused_naming_service_and_field(
    tmp_path: Path, key: str, body: str | None, message: str
) -> None:
    entries = _valid_entries()
    if body is None:
        del entries[key]
    else:
        entries[key] = body
    path = _write(tmp_path / "limits.yml", entries)
    with pytest.raises(ValueError, match=message):
        build_service_types(path)


def test_unreadable_limits_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_limits(tmp_path / "missing.yml", SERVICE_TYPES)
    bad = tmp_path / "bad.yml"
    bad.write_text("services: [1, 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid UTF-8 YAML"):
        load_limits(bad, SERVICE_TYPES)
    bad.write_text("- lv_new_supply\n", encoding="utf-8")
    with pytest.raises(ValueError, match="top-level `services:`"):
        load_limits(bad, SERVICE_TYPES)


def test_service_start_stops_on_a_wrong_limits_file(tmp_path: Path) -> None:
    """SERVICE_LIMITS_PATH is read when the service module loads: a wrong file stops it with the reason."""
    entries = _valid_entries()
    entries["mv_customer_supply"] = entry("town_days: 7", "rural_days: 0", PLACEHOLDER)
    path = _write(tmp_path / "limits.yml", entries)
    env = {**os.environ, "SERVICE_LIMITS_PATH": str(path)}
    run = subprocess.run(
        [sys.executable, "-m", "signing_service", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2  # a configuration error, said in one line, not a traceback
    assert "configuration error" in run.stderr and "'mv_customer_supply': rural_days" in run.stderr
    assert "Traceback" not in run.stderr


async def test_a_database_from_an_earlier_version_gets_the_new_named_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timezone

    from sqlalchemy import select

    from signing_service.db import Database
    from signing_service.demo import data as demo_data
    from signing_service.models import Document, Request

    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    await db.create_schema()
    named = demo_data.demo_requests
    new_codes = {"PC05TK0000901", "PC05TB0000902", "PC05TK0000903", "PC10NS0000904", "PC05TK0000905"}
    monkeypatch.setattr(
        demo_data, "demo_requests", lambda a: [r for r in named(a) if r.code not in new_codes]
    )
    now = datetime.now(timezone.utc)
    assert await demo_data.load_demo_data(db, now)  # the earlier version's data
    async with db.read() as s:
        before = (await s.execute(select(Request.code))).scalars().all()
    assert not new_codes & set(before)
    monkeypatch.setattr(demo_data, "demo_requests", named)
    assert not await demo_data.load_demo_data(db, now)  # not loaded again ...
    async with db.read() as s:
        after = (await s.execute(select(Request.code))).scalars().all()
        kinds = set((await s.execute(select(Document.kind))).scalars())
    assert sorted(after) == sorted([*before, *new_codes])  # ... but completed, nothing else changed
    assert {
        "hd_dau_tu_cong_trinh",
        "bb_ty_le_muc_dich",
        "bb_so_ho_chung_cong_to",
        "hd_lap_dat_sau_cong_to",
    } <= kinds
    assert not await demo_data.load_demo_data(db, now)
    async with db.read() as s:
        assert len((await s.execute(select(Request.code))).scalars().all()) == len(after)  # idempotent
    await db.close()
