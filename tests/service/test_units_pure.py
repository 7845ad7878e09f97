"""Pure helpers: working days, masking, code normalisation, settings validation."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from common.folding import fold
from common.request_code import normalize_request_code
from signing_service.masking import mask_address, mask_email, mask_name, mask_phone
from signing_service.settings import ConfigError, load_settings
from signing_service.text import clean_free_text
from signing_service.workdays import VN_TZ, add_working_days, working_days_between, working_days_late
from tests.test_production_defaults import SIGNING_PRODUCTION


def test_working_days_skip_weekends() -> None:
    friday = datetime(2026, 11, 27, 9, 0, tzinfo=VN_TZ)
    assert add_working_days(friday, 1) == datetime(2026, 11, 30, 9, 0, tzinfo=VN_TZ)
    assert add_working_days(friday, 3) == datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)
    assert add_working_days(friday, -5) == datetime(2026, 11, 20, 9, 0, tzinfo=VN_TZ)
    assert working_days_between(date(2026, 11, 27), date(2026, 11, 30)) == 1
    due = add_working_days(friday, 3)
    assert working_days_late(due, due) == 0
    assert working_days_late(due, datetime(2026, 12, 4, 9, 0, tzinfo=VN_TZ)) == 2


def test_masking() -> None:
    assert mask_name("Nguyễn Văn An") == "Nguyễn V** A*"
    assert mask_name("Trần Thị Bích Ngọc") == "Trần T** B*** N***"
    assert mask_phone("0905123456") == "090****456"
    assert mask_phone(None) is None
    assert mask_email("an@example.com") == "a*@example.com"
    assert mask_address("12 Phan Chu Trinh, P. Tân Thạnh, TP Tam Kỳ") == "***, P. Tân Thạnh, TP Tam Kỳ"


def test_text_helpers() -> None:
    assert fold("Điện lực  TAM KỲ") == "dien luc tam ky"
    assert normalize_request_code(" pc05tk-000 0123 ") == "PC05TK0000123"
    assert normalize_request_code("PC05TK000012") is None
    assert normalize_request_code("ＰＣ０５ＴＫ００００１２３") == "PC05TK0000123"
    # The shared contract reads other scripts' digits as the customer meant them (common/request_code.py).
    assert normalize_request_code("PC05TK000012٣") == "PC05TK0000123"
    assert clean_free_text("  Sai\x00 tên\r\n\r\n\r\n\r\nđệm \u202e ") == "Sai tên\n\nđệm"


def test_settings_defaults_and_production_refusal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = load_settings({"SIGNING_VAR_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'signing.db'}"
    assert s.outbox_path == tmp_path / "outbox" / "messages.jsonl"
    assert s.token == "dev-signing-token" and s.link_ttl_seconds == 3600
    assert (s.otp_sends_per_hour, s.otp_sends_per_day) == (5, 10)
    with pytest.raises(ConfigError, match="SIGNING_SERVICE_TOKEN"):
        load_settings({"APP_ENV": "production", "SIGNING_VAR_DIR": str(tmp_path)})
    with pytest.raises(ConfigError, match="LINK_TTL_SECONDS"):
        load_settings({"LINK_TTL_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings({"DATABASE_URL": "mysql://x"})
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings({"APP_ENV": "prod"})
    with pytest.raises(ConfigError, match="SEAL_CA_PATH"):
        load_settings({"SEAL_P12_PATH": "/etc/seal.p12"})
    production = {**SIGNING_PRODUCTION, "SIGNING_VAR_DIR": str(tmp_path)}
    ok = load_settings(production)
    assert ok.production and not ok.generate_dev_ca and not ok.demo_data
    with pytest.raises(ConfigError, match="https"):
        load_settings({**production, "PUBLIC_BASE_URL": "http://ky.cpc.vn"})
    with pytest.raises(ConfigError, match="SEAL_P12_PASSWORD"):
        load_settings({k: v for k, v in production.items() if k != "SEAL_P12_PASSWORD"})


def test_configured_seal_is_used_instead_of_a_generated_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Production path: the seal comes from SEAL_P12_PATH / SEAL_CA_PATH; nothing is generated."""
    from fpdf import FPDF

    from signing_service.pades import Sealer, SealRequest, generate_dev_seal

    issued = tmp_path / "issued"
    generate_dev_seal(issued / "org-seal.p12", "s3cret-pass", issued / "org-ca.pem")  # stands in for a CA
    settings = load_settings(
        {
            "SIGNING_VAR_DIR": str(tmp_path / "var"),
            "SEAL_P12_PATH": str(issued / "org-seal.p12"),
            "SEAL_P12_PASSWORD": "s3cret-pass",
            "SEAL_CA_PATH": str(issued / "org-ca.pem"),
        }
    )
    sealer = Sealer.from_settings(settings)
    assert not (tmp_path / "var" / "keys").exists()
    pdf = FPDF()
    pdf.add_page()
    signed = sealer.seal(bytes(pdf.output()), SealRequest("Lê Văn Tám", "test", "test", "test"))
    check = sealer.check(signed)
    assert check.intact and check.valid and check.trusted and check.signer == "Lê Văn Tám"
    with pytest.raises(ValueError):
        Sealer(issued / "org-seal.p12", "wrong-password", issued / "org-ca.pem")


def test_otp_codes_and_hashes() -> None:
    from signing_service import otp

    codes = {otp.new_code() for _ in range(2000)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 1900  # random, not a counter or a constant
    h = otp.code_hash("k" * 20, "session-a", "123456")
    assert "123456" not in h and len(h) == 64
    assert h != otp.code_hash("k" * 20, "session-b", "123456")  # bound to the session
    assert otp.matches("k" * 20, "session-a", "123456", h)
    assert not otp.matches("k" * 20, "session-a", "123457", h)
    assert not otp.matches("k" * 20, "session-a", "123456", None)  # revoked / consumed
    assert otp.clean_candidate(" 123-456 ") == "123456"
    assert otp.clean_candidate("12345") is None and otp.clean_candidate(123456) is None
    assert otp.clean_candidate("１２３４５６") == "123456"  # full-width keyboard digits
    assert otp.clean_candidate("١٢٣٤٥٦") is None  # other scripts' digits are not codes


def test_links_are_bound_to_document_variant_and_expiry() -> None:
    from datetime import timedelta, timezone
    from urllib.parse import parse_qs, urlsplit

    from signing_service.links import check_link, make_link

    now = datetime.now(timezone.utc)
    exp = int(now.timestamp()) + 60
    q = {
        k: v[0]
        for k, v in parse_qs(urlsplit(make_link("https://x", "s" * 20, 7, "original", exp)).query).items()
    }
    assert check_link("s" * 20, 7, "original", q["expires"], q["sig"], now) is None
    assert check_link("s" * 20, 8, "original", q["expires"], q["sig"], now) == "invalid"
    assert check_link("s" * 20, 7, "signed", q["expires"], q["sig"], now) == "invalid"
    assert check_link("other-secret-123", 7, "original", q["expires"], q["sig"], now) == "invalid"
    assert check_link("s" * 20, 7, "original", str(exp + 1), q["sig"], now) == "invalid"
    assert (
        check_link("s" * 20, 7, "original", q["expires"], q["sig"], now + timedelta(seconds=61)) == "expired"
    )
