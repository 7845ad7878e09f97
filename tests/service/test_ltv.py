"""PAdES B-LT (issue 17, "signatures that stay valid"): with the development TSA (a real process) every
seal carries a DSS with the certificates and CRLs of the seal's and the TSA's chains, so pyHanko
validates it with only the two roots and no fetching, and poppler's pdfsig accepts it. The service
publishes the development CA's CRL; keys made before CRLs keep sealing (B-T); a CA-issued seal
downloads its CRLs only with SEAL_LTV_FETCH=1."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from devstack import tsa
from signing_service import dev_certs
from signing_service.http.app import create_app
from signing_service.pades import generate_dev_seal
from signing_service.settings import ConfigError, load_settings
from tests.service.conftest import Api, make_settings
from tests.service.test_timestamp import a_pdf, check, dev_tsa, seal, stamped  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def asn1(pem: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(
        x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    )


def roots(api: Api, tsa_root: Path) -> list[asn1_x509.Certificate]:
    """Only the development seal CA and the TSA root: nothing else is trusted."""
    return [asn1(api.ctx.settings.seal_ca_path.read_bytes()), asn1(tsa_root.read_bytes())]


def offline_lt_status(pdf: bytes, trust: list[asn1_x509.Certificate]) -> Any:
    """pyHanko's PAdES-LT validation: the DSS's certificates and CRLs only, no fetching, revocation
    data required for every certificate, as of the time the signature's timestamp proves."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    sig = reader.embedded_signatures[-1]
    at = validate_pdf_signature(sig, ValidationContext(trust_roots=trust)).timestamp_validity.timestamp
    dss = DocumentSecurityStore.read_dss(reader)
    kwargs = {"trust_roots": trust, "allow_fetching": False, "revocation_mode": "require", "moment": at}
    return validate_pdf_signature(sig, dss.as_validation_context(kwargs), dss.as_validation_context(kwargs))


async def test_a_seal_carries_its_validation_data(
    stamped: Api,  # noqa: F811
    dev_tsa: tuple[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    signed = await seal(stamped)
    check_ = await check(stamped, signed)
    assert (check_.valid, check_.trusted, check_.timestamp_valid, check_.ltv) == (True, True, True, True)

    # The DSS: the certificates of both chains and one CRL per issuing root, each signed by that root.
    dss = PdfFileReader(io.BytesIO(signed), strict=False).root["/DSS"]
    certs = [x509.load_der_x509_certificate(c.get_object().data) for c in dss["/Certs"]]
    crls = [x509.load_der_x509_crl(c.get_object().data) for c in dss["/CRLs"]]
    ca = x509.load_pem_x509_certificate(stamped.ctx.settings.seal_ca_path.read_bytes())
    tsa_root = x509.load_pem_x509_certificate(dev_tsa[1].read_bytes())
    names = {c.subject.rfc4514_string() for c in certs}
    assert any("Con dấu điện tử" in n for n in names) and any("Timestamp Authority" in n for n in names)
    assert sorted(c.issuer.rfc4514_string() for c in crls) == sorted(
        [ca.subject.rfc4514_string(), tsa_root.subject.rfc4514_string()]
    )
    for crl in crls:
        issuer = ca if crl.issuer == ca.subject else tsa_root
        assert crl.is_signature_valid(issuer.public_key()) and len(list(crl)) == 0

    # pyHanko, offline, with only the two roots: valid as of the timestamp (PAdES LT) ...
    loop = asyncio.get_running_loop()  # pyHanko's sync API runs its own event loop: not in this one
    status = await loop.run_in_executor(None, offline_lt_status, signed, roots(stamped, dev_tsa[1]))
    assert status.bottom_line and status.valid and status.trusted
    assert status.timestamp_validity.valid and status.timestamp_validity.trusted
    # ... which it is not without the DSS (the same check, no revocation data at hand).
    reader = PdfFileReader(io.BytesIO(signed), strict=False)
    bare = ValidationContext(
        trust_roots=roots(stamped, dev_tsa[1]), crls=[], allow_fetching=False, revocation_mode="require"
    )
    assert not (
        await loop.run_in_executor(None, validate_pdf_signature, reader.embedded_signatures[-1], bare)
    ).trusted

    # poppler: the signature is valid (the DSS is an incremental update after it, as PAdES has it).
    path = tmp_path / "signed-lt.pdf"
    path.write_bytes(signed)
    proc = await asyncio.create_subprocess_exec("pdfsig", str(path), stdout=subprocess.PIPE)
    out = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    assert "Signature Validation: Signature is Valid." in out, out


async def test_the_ca_crl_is_published_and_lists_nothing(stamped: Api) -> None:  # noqa: F811
    async with stamped.client.get("/pki/ca.crl") as r:  # no token: validators fetch it
        assert r.status == 200 and r.content_type == "application/pkix-crl"
        crl = x509.load_der_x509_crl(await r.read())
    async with stamped.client.get("/pki/ca.pem") as r:
        assert r.status == 200
        ca = x509.load_pem_x509_certificate(await r.read())
    assert ca.public_bytes(serialization.Encoding.PEM) == stamped.ctx.settings.seal_ca_path.read_bytes()
    assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
    assert len(list(crl)) == 0
    now = datetime.now(timezone.utc)
    assert crl.last_update_utc <= now < crl.next_update_utc
    assert crl.next_update_utc - now > timedelta(days=5)
    # The seal certificate names this address (PUBLIC_BASE_URL + /pki/ca.crl) as its CRL.
    seal_cert = stamped.ctx.sealer.signer.signing_cert
    assert [p.url for p in seal_cert.crl_distribution_points] == ["http://testserver.local/pki/ca.crl"]
    assert oct(stamped.ctx.settings.seal_p12_path.with_name("ca.key").stat().st_mode & 0o777) == "0o600"


def test_a_stale_crl_is_issued_again() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    ca = dev_certs.root(key, dev_certs.dev_name("T", "T CA"), start - timedelta(days=1), 30)
    clock = [start]
    publisher = dev_certs.CrlPublisher(key, ca, now=lambda: clock[0])
    first = publisher.der()
    clock[0] = start + timedelta(minutes=59)
    assert publisher.der() == first  # cached: one CRL an hour
    clock[0] = start + timedelta(hours=1, minutes=1)
    second = x509.load_der_x509_crl(publisher.der())
    assert second.last_update_utc == start + timedelta(hours=1, minutes=1)
    assert second.next_update_utc == second.last_update_utc + timedelta(days=7)
    number = x509.CRLNumber
    old = x509.load_der_x509_crl(first).extensions.get_extension_for_class(number).value.crl_number
    assert second.extensions.get_extension_for_class(number).value.crl_number > old


async def test_keys_made_before_crls_keep_sealing_b_t(
    aiohttp_client: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    dev_tsa: tuple[str, Path],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        tmp_path, "sqlite", request, TSA_URL=dev_tsa[0], TSA_ROOT_PATH=str(dev_tsa[1]), SIGNING_DEMO_DATA="0"
    )
    # As generate_dev_seal made them before: no CRL distribution point, the CA key discarded.
    generate_dev_seal(settings.seal_p12_path, settings.seal_p12_password, settings.seal_ca_path)
    settings.seal_p12_path.with_name("ca.key").unlink()
    keys = settings.seal_p12_path.parent
    before = {p.name: p.read_bytes() for p in keys.iterdir() if p.is_file()}
    caplog.set_level(logging.INFO, logger="signing_service.pades")
    api = Api(await aiohttp_client(create_app(settings)))
    for _ in range(2):
        check_ = await check(api, await seal(api))
        assert check_.valid and check_.trusted and check_.timestamp_valid and not check_.ltv
    said = [r.getMessage() for r in caplog.records if "not B-LT" in r.getMessage()]
    assert len(said) == 1 and "predates CRLs" in said[0], said  # once, at start-up, with the reason
    assert {p.name: p.read_bytes() for p in keys.iterdir() if p.is_file()} == before  # nothing regenerated
    async with api.client.get("/pki/ca.crl") as r:
        assert r.status == 404
    async with api.client.get("/pki/ca.pem") as r:
        assert r.status == 200 and await r.read() == before["ca.pem"]


async def test_a_ca_issued_seal_downloads_crls_only_when_allowed(
    aiohttp_client: Any,
    aiohttp_server: Any,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    dev_tsa: tuple[str, Path],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Production shape: SEAL_P12_PATH from an outside CA that publishes its CRL over HTTP."""
    served: list[bytes] = []
    crl_der: dict[str, bytes] = {}

    async def ca_crl(_: web.Request) -> web.Response:
        served.append(crl_der["der"])
        return web.Response(body=crl_der["der"], content_type="application/pkix-crl")

    app = web.Application()
    app.router.add_get("/org-ca.crl", ca_crl)
    server = await aiohttp_server(app)
    issued = tmp_path / "issued"  # stands in for the CA's files
    generate_dev_seal(
        issued / "org-seal.p12", "s3cret-pass", issued / "org-ca.pem", str(server.make_url("/org-ca.crl"))
    )
    ca = x509.load_pem_x509_certificate((issued / "org-ca.pem").read_bytes())
    crl_der["der"] = dev_certs.CrlPublisher(
        dev_certs.load_ec_key(issued / "ca.key", b"s3cret-pass"), ca
    ).der()
    env = {
        "SEAL_P12_PATH": str(issued / "org-seal.p12"),
        "SEAL_P12_PASSWORD": "s3cret-pass",
        "SEAL_CA_PATH": str(issued / "org-ca.pem"),
        "TSA_URL": dev_tsa[0],
        "TSA_ROOT_PATH": str(dev_tsa[1]),
        "SIGNING_DEMO_DATA": "0",
    }
    caplog.set_level(logging.INFO, logger="signing_service.pades")
    off = Api(await aiohttp_client(create_app(make_settings(tmp_path / "off", "sqlite", request, **env))))
    check_ = await check(off, await seal(off))
    assert check_.timestamp_valid and not check_.ltv and not served
    assert any("SEAL_LTV_FETCH is off" in r.getMessage() for r in caplog.records)
    async with off.client.get("/pki/ca.crl") as r:
        assert r.status == 404  # the outside CA publishes its own

    on_settings = make_settings(tmp_path / "on", "sqlite", request, SEAL_LTV_FETCH="1", **env)
    on = Api(await aiohttp_client(create_app(on_settings)))
    for _ in range(2):
        signed = await seal(on)
        assert (await check(on, signed)).ltv
    assert len(served) == 1  # downloaded once, then kept in memory
    trust = [asn1((issued / "org-ca.pem").read_bytes()), asn1(dev_tsa[1].read_bytes())]
    status = await asyncio.get_running_loop().run_in_executor(None, offline_lt_status, signed, trust)
    assert status.bottom_line


def test_seal_ltv_fetch_setting(tmp_path: Path) -> None:
    base = {"SIGNING_VAR_DIR": str(tmp_path)}
    tsa_root = tmp_path / "root.pem"
    tsa_root.write_text("x")
    stamped_env = {**base, "TSA_URL": "http://127.0.0.1:1/", "TSA_ROOT_PATH": str(tsa_root)}
    assert load_settings(base).seal_ltv_fetch  # development seal: only the TSA's CRL is downloaded
    p12 = {"SEAL_P12_PATH": "/etc/seal.p12", "SEAL_CA_PATH": "/etc/ca.pem"}
    assert not load_settings({**stamped_env, **p12}).seal_ltv_fetch  # a CA-issued seal: opt in
    assert load_settings({**stamped_env, **p12, "SEAL_LTV_FETCH": "1"}).seal_ltv_fetch
    assert not load_settings({**stamped_env, "SEAL_LTV_FETCH": "0"}).seal_ltv_fetch
    with pytest.raises(ConfigError, match="SEAL_LTV_FETCH must be"):
        load_settings({**stamped_env, "SEAL_LTV_FETCH": "maybe"})
    with pytest.raises(ConfigError, match="needs TSA_URL and TSA_ROOT_PATH"):
        load_settings({**base, **p12, "SEAL_LTV_FETCH": "1"})


async def test_the_tsa_certificate_follows_the_tsa_address(tmp_path: Path, aiohttp_client: Any) -> None:
    keys = tmp_path / "tsa"
    tsa.ensure_keys(keys)  # as devstack.processes.with_dev_tsa makes them before the TSA starts
    root = (keys / tsa.ROOT_FILE).read_bytes()
    old = x509.load_pem_x509_certificate((keys / tsa.CERT_FILE).read_bytes())
    client = await aiohttp_client(tsa.create_app(keys, "http://127.0.0.1:9/crl"))
    new = x509.load_pem_x509_certificate((keys / tsa.CERT_FILE).read_bytes())
    assert dev_certs.crl_urls(new) == ["http://127.0.0.1:9/crl"] and not dev_certs.crl_urls(old)
    assert new.public_key() == old.public_key() and (keys / tsa.ROOT_FILE).read_bytes() == root
    async with client.get("/crl") as r:
        crl = asn1_crl.CertificateList.load(await r.read())
    assert crl.issuer == asn1(root).subject and not crl["tbs_cert_list"]["revoked_certificates"]

    legacy = tmp_path / "legacy"  # keys from before: the root key was discarded
    tsa.ensure_keys(legacy)
    (legacy / tsa.ROOT_KEY_FILE).unlink()
    cert = (legacy / tsa.CERT_FILE).read_bytes()
    client = await aiohttp_client(tsa.create_app(legacy, "http://127.0.0.1:9/crl"))
    assert (legacy / tsa.CERT_FILE).read_bytes() == cert  # kept as it is
    async with client.get("/crl") as r:
        assert r.status == 404


def test_downloaded_crls_are_kept_an_hour_and_outlive_a_failing_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from cryptography.hazmat.primitives.asymmetric import ec

    from signing_service import pades

    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = dev_certs.dev_name("T", "Outside CA")
    ca = dev_certs.root(ca_key, name, now, 30)
    usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = dev_certs.issue(
        key, dev_certs.dev_name("T", "Seal"), ca_key, name, now, 30, usage, crl_url="http://ca/crl"
    )
    bare = dev_certs.issue(key, dev_certs.dev_name("T", "Seal"), ca_key, name, now, 30, usage)
    crl = asn1_crl.CertificateList.load(dev_certs.CrlPublisher(ca_key, ca).der())
    clock = [1000.0]
    monkeypatch.setattr(pades.time, "monotonic", lambda: clock[0])
    downloads: list[str] = []
    failing = [False]

    def download(url: str) -> asn1_crl.CertificateList:
        downloads.append(url)
        if failing[0]:
            raise requests.ConnectionError("CA down")
        return crl

    data = pades.RevocationData(None, fetch=True)
    monkeypatch.setattr(data, "_download", download)
    cert = asn1(leaf.public_bytes(serialization.Encoding.PEM))
    assert data.crl_for(cert) is crl and data.crl_for(cert) is crl and downloads == ["http://ca/crl"]
    clock[0] += 3601  # an hour later: fetched again; the CA is down, the CRL still valid: kept
    failing[0] = True
    assert data.crl_for(cert) is crl and len(downloads) == 2
    clock[0] += 60  # no new try for five minutes: seals do not wait on a dead CA
    assert data.crl_for(cert) is crl and len(downloads) == 2
    clock[0] += 300
    assert data.crl_for(cert) is crl and len(downloads) == 3
    assert "no http CRL distribution point" in str(
        data.crl_for(asn1(bare.public_bytes(serialization.Encoding.PEM)))
    )
    assert "SEAL_LTV_FETCH=1" in str(pades.RevocationData(None, fetch=False).crl_for(cert))


def test_a_seal_chain_without_crl_is_said_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from signing_service.pades import Sealer

    generate_dev_seal(tmp_path / "org.p12", "s3cret-pass", tmp_path / "org-ca.pem")  # no CRL named
    root = tmp_path / "tsa-root.pem"
    root.write_bytes((tmp_path / "org-ca.pem").read_bytes())  # any root: nothing is asked of the TSA here
    caplog.set_level(logging.INFO, logger="signing_service.pades")
    sealer = Sealer(
        tmp_path / "org.p12",
        "s3cret-pass",
        tmp_path / "org-ca.pem",
        "http://127.0.0.1:9/",
        [root],
        ltv_fetch=True,
    )
    assert sealer.revinfo is None
    said = [r.getMessage() for r in caplog.records if "not B-LT" in r.getMessage()]
    assert len(said) == 1 and "names no http CRL distribution point" in said[0]


async def test_the_check_page_tells_a_customers_signed_file_carries_ltv_data(stamped: Api) -> None:  # noqa: F811
    from tests.service.conftest import last_code, make_request
    from tests.service.test_certificate import check as check_page
    from tests.service.test_signing import start, verify

    fresh = await make_request(stamped)
    _, sess = await start(stamped, fresh)
    status, done = await verify(stamped, sess["session_id"], last_code(stamped.ctx.settings, fresh.phone))
    assert status == 200
    async with stamped.client.get(
        done["documents"][0]["signed_url"].removeprefix(stamped.ctx.settings.public_base_url)
    ) as r:
        signed = await r.read()
    verdict, page = await check_page(stamped, signed)
    assert verdict == "valid" and 'id="ltv"' in page and 'id="timestamp"' in page
    status, body = await stamped.get(f"/v1/documents/{fresh.doc_ids[0]}/verification")
    assert status == 200 and body["ltv"] is True and body["timestamped"] is True
