"""The service seal: PAdES signatures with pyHanko, and their validation.

Levels: B-B without a timestamp authority; B-T with TSA_URL (an RFC 3161 token over the signature);
B-LT when, in addition, the revocation data of every certificate in the seal's and the TSA's chains
can be had: the signed file then carries a DSS (the certificates and the CRLs), so a validator needs
neither this service nor the network (docs/security.md, "signatures that stay valid").

Development: a CA and a seal certificate are generated on first run into `<var>/keys/`; the CA key is
kept (`ca.key`, 0600, encrypted with the seal password) so this service issues the CA's CRL, served
at `GET /pki/ca.crl` and named in the seal certificate. Keys generated before that (no CRL
distribution point, CA key discarded) are kept as they are and seal B-T. Production:
SEAL_P12_PATH / SEAL_P12_PASSWORD / SEAL_CA_PATH point to a CA-issued seal; its CRLs (and the TSA's)
are downloaded from the certificates' distribution points only with SEAL_LTV_FETCH=1.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from asn1crypto import cms, pem
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext

from . import dev_certs
from .settings import Settings

log = logging.getLogger(__name__)

SEAL_FIELD = "KhachHangKyOTP"
# CMS with an EC P-256 seal and a 2-certificate chain is ~2 KB; 8 KB leaves room for an RSA-4096
# production chain (too small fails the whole batch cleanly, nothing is stored).
BYTES_RESERVED = 8192
# With a timestamp token (a second CMS with the TSA's chain) in the signature. B-LT needs no more:
# PAdES puts the certificates and CRLs in the DSS, an incremental update after the signature.
BYTES_RESERVED_TSA = 16384
# The development CA's key, next to seal.p12; and where the service publishes the CA (api_pki.py).
CA_KEY_FILE = "ca.key"
CRL_PATH = "/pki/ca.crl"
CA_CERT_PATH = "/pki/ca.pem"
# Downloaded CRLs are used for at most this long before being fetched again (sooner past nextUpdate);
# after a failed download, the next try waits RETRY_AFTER (seals meanwhile never wait on a timeout).
REVINFO_REFRESH = timedelta(hours=1)
RETRY_AFTER = timedelta(minutes=5)
MAX_CRL_BYTES = 10 * 1024 * 1024


class _QuietPyHanko(logging.Filter):
    """pyHanko warns on every B-LT seal that fetching is off: on purpose, the CRLs are given to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not msg.startswith("Validation/revocation info will be embedded, but fetching is not")


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_QuietPyHanko())


@dataclass(frozen=True)
class SealRequest:
    """What goes into the signature dictionary (visible in any PDF reader)."""

    signer_name: str
    reason: str
    location: str
    contact_info: str


@dataclass(frozen=True)
class SignatureCheck:
    signed: bool
    intact: bool
    valid: bool
    trusted: bool
    signer: str | None
    seal_subject: str | None
    signed_at: datetime | None
    reason: str | None
    # PAdES B-T: an RFC 3161 token over the signature, valid against the trusted TSA roots.
    timestamped: bool = False
    timestamp_valid: bool = False
    timestamp_at: datetime | None = None
    # PAdES B-LT: the file's DSS holds every certificate and CRL needed to validate the signature and
    # its timestamp as of the timestamp's time, offline (no fetching), against the trusted roots.
    ltv: bool = False


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _chain(
    leaf: asn1_x509.Certificate, pool: Iterable[asn1_x509.Certificate], anchors: list[asn1_x509.Certificate]
) -> list[asn1_x509.Certificate]:
    """`leaf` and its issuers found in `pool`, up to and without the trust anchor (or a self-signed
    root): the certificates whose revocation status a validator needs."""
    by_subject = {c.subject.dump(): c for c in pool}
    trusted = {c.dump() for c in anchors}
    chain: list[asn1_x509.Certificate] = []
    cert = leaf
    while cert.self_signed == "no" and cert.dump() not in trusted and len(chain) < 8:
        chain.append(cert)
        issuer = by_subject.get(cert.issuer.dump())
        if issuer is None:
            break
        cert = issuer
    return chain


class RevocationData:
    """The CRL of each certificate of the seal's and the TSA's chains, held in memory so a seal never
    waits on the network: the development CA's is issued here (`local`); the others are downloaded
    from the certificate's CRL distribution points, only if `fetch` allows, and fetched again once
    older than REVINFO_REFRESH (a failed download keeps the previous CRL until its nextUpdate)."""

    def __init__(self, local: dev_certs.CrlPublisher | None, fetch: bool, timeout: float = 10) -> None:
        self.local = local
        self.local_subject = _asn1(local.cert).subject.dump() if local else None
        self.fetch = fetch
        self.timeout = timeout
        self._lock = threading.Lock()
        self._fetched: dict[str, tuple[float, asn1_crl.CertificateList]] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    def unavailable(self, cert: asn1_x509.Certificate) -> str | None:
        """Why no CRL can be had for `cert` whatever the network does, or None."""
        if self.local is not None and cert.issuer.dump() == self.local_subject:
            return None
        who = cert.subject.human_friendly
        if not _crl_urls(cert):
            return f"the certificate {who!r} names no http CRL distribution point"
        if not self.fetch:
            return f"downloading the CRL of {who!r} is not allowed (SEAL_LTV_FETCH=1 allows it)"
        return None

    def crl_for(self, cert: asn1_x509.Certificate) -> asn1_crl.CertificateList | str:
        """The CRL covering `cert`, or why there is none."""
        if self.local is not None and cert.issuer.dump() == self.local_subject:
            return self.local.current()[1]
        reason = self.unavailable(cert)
        if reason is not None:
            return reason
        who, urls = cert.subject.human_friendly, _crl_urls(cert)
        with self._lock:
            errors: list[str] = []
            for url in urls:
                got = self._cached_or_fetched(url, errors)
                if got is not None and got.issuer == cert.issuer:
                    return got
                if got is not None:
                    errors.append(f"{url}: the CRL is not issued by the certificate's issuer")
            return f"no usable CRL for {who!r}: " + "; ".join(errors)

    def _cached_or_fetched(self, url: str, errors: list[str]) -> asn1_crl.CertificateList | None:
        cached = self._fetched.get(url)
        now, clock = datetime.now(timezone.utc), time.monotonic()
        if cached and clock - cached[0] < REVINFO_REFRESH.total_seconds() and _fresh(cached[1], now):
            return cached[1]
        failed = self._failed.get(url)
        if failed and clock - failed[0] < RETRY_AFTER.total_seconds():
            errors.append(failed[1])
            return cached[1] if cached and _fresh(cached[1], now) else None
        try:
            fetched = self._download(url)
            if not _fresh(fetched, now):
                raise ValueError("the CRL is outside its validity period")
        except (requests.RequestException, ValueError) as e:
            self._failed[url] = (clock, f"{url}: {e}")
            errors.append(f"{url}: {e}")
            if cached and _fresh(cached[1], now):
                log.warning("CRL download from %s failed (%s); the previous CRL is still valid", url, e)
                return cached[1]
            return None
        self._failed.pop(url, None)
        self._fetched[url] = (clock, fetched)
        return fetched

    def _download(self, url: str) -> asn1_crl.CertificateList:
        with requests.get(url, timeout=self.timeout, stream=True) as r:
            r.raise_for_status()
            body = r.raw.read(MAX_CRL_BYTES + 1, decode_content=True)
        if len(body) > MAX_CRL_BYTES:
            raise ValueError(f"CRL larger than {MAX_CRL_BYTES} bytes")
        if pem.detect(body):
            body = pem.unarmor(body)[2]
        crl = asn1_crl.CertificateList.load(body)
        crl.native  # noqa: B018 (parses it all: a broken CRL fails here, not while signing)
        return crl


def _crl_urls(cert: asn1_x509.Certificate) -> list[str]:
    return [
        p.url for p in cert.crl_distribution_points if p.url and p.url.startswith(("http://", "https://"))
    ]


def _fresh(crl: asn1_crl.CertificateList, now: datetime) -> bool:
    tbs = crl["tbs_cert_list"]
    next_update = tbs["next_update"].native
    return bool(tbs["this_update"].native <= now and (next_update is None or now < next_update))


class Sealer:
    def __init__(
        self,
        p12_path: Path,
        password: str,
        ca_path: Path,
        tsa_url: str | None = None,
        tsa_roots: list[Path] | None = None,
        *,
        dev_crls: dev_certs.CrlPublisher | None = None,
        ltv_fetch: bool = False,
        no_ltv_reason: str | None = None,
    ) -> None:
        self.signer = signers.SimpleSigner.load_pkcs12(str(p12_path), passphrase=password.encode())
        if self.signer is None:
            raise ValueError(f"cannot load the seal from {p12_path} (wrong password or file)")
        ca_pem = ca_path.read_bytes()
        self.ca_cert = _asn1(x509.load_pem_x509_certificate(ca_pem))
        self.ca_pem = ca_pem
        # B-T when a timestamp authority is configured (TSA_URL); its roots validate the tokens.
        self.timestamper = RequestsHTTPTimeStamper(tsa_url, timeout=10) if tsa_url else None
        self.tsa_roots = [_asn1(x509.load_pem_x509_certificate(p.read_bytes())) for p in tsa_roots or []]
        # The development CA's CRL publisher (also serves GET /pki/ca.crl); None with legacy or CA keys.
        self.dev_crls = dev_crls
        seal_cert = self.signer.signing_cert
        self._seal_chain = _chain(seal_cert, [*self.signer.cert_registry, self.ca_cert], [self.ca_cert])
        self._tsa_chain: list[asn1_x509.Certificate] | str | None = None
        self._tsa_lock = threading.Lock()
        self._warned: set[str] = set()
        reason = no_ltv_reason
        if self.timestamper is None:
            reason = None  # B-B: LTV builds on a timestamp
        elif not self.tsa_roots:
            reason = reason or "TSA_ROOT_PATH is not set (the TSA's chain cannot be validated)"
        elif reason is None and dev_crls is None and not ltv_fetch:
            reason = "SEAL_LTV_FETCH is off: the CA's and the TSA's CRLs may not be downloaded"
        revinfo = RevocationData(dev_crls, ltv_fetch) if self.timestamper and reason is None else None
        # The seal's chain is known now, so a certificate of it that cannot have a CRL is said at
        # start-up (the TSA's chain is known from its first token, and said then).
        if revinfo is not None:
            for cert in self._seal_chain:
                reason = reason or revinfo.unavailable(cert)
        self.revinfo = revinfo if reason is None else None
        level = "B-LT" if self.revinfo else "B-T" if self.timestamper else "B-B"
        if reason:
            log.warning("seals are PAdES B-T, not B-LT: %s", reason)
        else:
            log.info("seals are PAdES %s (seal certificate %s)", level, seal_cert.subject.human_friendly)

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        dev_crls, reason = None, None
        if settings.generate_dev_ca:
            crl_url = settings.public_base_url + CRL_PATH
            generate_dev_seal(
                settings.seal_p12_path, settings.seal_p12_password, settings.seal_ca_path, crl_url
            )
            dev_crls, reason = load_dev_ca(
                settings.seal_p12_path, settings.seal_p12_password, settings.seal_ca_path, crl_url
            )
        roots = [settings.tsa_root_path] if settings.tsa_root_path else []
        return cls(
            settings.seal_p12_path,
            settings.seal_p12_password,
            settings.seal_ca_path,
            settings.tsa_url,
            roots,
            dev_crls=dev_crls,
            ltv_fetch=settings.seal_ltv_fetch,
            no_ltv_reason=reason,
        )

    def seal(self, pdf: bytes, req: SealRequest) -> bytes:
        """Add one PAdES signature to `pdf` (B-LT when the revocation data is at hand, else B-T with a
        TSA, else B-B); raises on an unreadable PDF or an unreachable TSA (nothing is then stored: the
        batch fails as a whole)."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        vc = self._ltv_context()
        meta = signers.PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            name=req.signer_name,
            reason=req.reason,
            location=req.location,
            contact_info=req.contact_info,
            embed_validation_info=vc is not None,
            validation_context=vc,
        )
        out = io.BytesIO()
        # A fixed reservation skips pyHanko's dry-run signature used to size the placeholder (~40% faster).
        reserved = BYTES_RESERVED_TSA if self.timestamper else BYTES_RESERVED
        signers.sign_pdf(
            writer,
            meta,
            signer=self.signer,
            timestamper=self.timestamper,
            output=out,
            bytes_reserved=reserved,
        )
        return out.getvalue()

    def _ltv_context(self) -> ValidationContext | None:
        """What pyHanko validates the two chains with before signing and embeds in the DSS: the trusted
        roots and one CRL per certificate; revocation data is required and never fetched by pyHanko
        (the CRLs come from memory). None when some CRL is missing: that seal is B-T (logged once)."""
        if self.revinfo is None:
            return None
        crls: dict[bytes, asn1_crl.CertificateList] = {}
        tsa_chain = self._tsa_certs()
        missing = tsa_chain if isinstance(tsa_chain, str) else None
        for cert in [*self._seal_chain, *tsa_chain] if missing is None else []:
            got = self.revinfo.crl_for(cert)
            if isinstance(got, str):
                missing = got
                break
            crls[got.sha256] = got
        if missing is not None:
            if missing not in self._warned:
                self._warned.add(missing)
                log.warning("this seal and those like it are PAdES B-T, not B-LT: %s", missing)
            return None
        return ValidationContext(
            trust_roots=[self.ca_cert, *self.tsa_roots],
            crls=list(crls.values()),
            allow_fetching=False,
            revocation_mode="require",
        )

    def _tsa_certs(self) -> list[asn1_x509.Certificate] | str:
        """The TSA's certificate and intermediates, from a first token (pyHanko asks the TSA for one
        such token per Sealer anyway, to know the certificates it validates); or why not."""
        if self._tsa_chain is None:
            assert self.timestamper is not None
            with self._tsa_lock:
                if self._tsa_chain is None:
                    token = asyncio.run(self.timestamper.async_dummy_response("sha256"))
                    certs = [
                        c.chosen
                        for c in token["content"]["certificates"]
                        if isinstance(c.chosen, asn1_x509.Certificate)
                    ]
                    leaf = _tsa_leaf(token["content"], certs)
                    self._tsa_chain = (
                        _chain(leaf, certs, self.tsa_roots)
                        if leaf
                        else "the TSA's tokens do not include its certificate"
                    )
        return self._tsa_chain

    def check(self, pdf: bytes) -> SignatureCheck:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
        if not sigs:
            return SignatureCheck(False, False, False, False, None, None, None, None)
        sig = sigs[-1]
        vc = ValidationContext(trust_roots=[self.ca_cert, *self.tsa_roots], allow_fetching=False)
        status = validate_pdf_signature(sig, vc)
        ts = status.timestamp_validity
        name = sig.sig_object.get("/Name")
        reason = sig.sig_object.get("/Reason")
        timestamp_valid = bool(ts is not None and ts.intact and ts.valid and ts.trusted)
        return SignatureCheck(
            signed=True,
            intact=bool(status.intact),
            valid=bool(status.valid),
            trusted=bool(status.trusted),
            signer=str(name) if name is not None else None,
            seal_subject=status.signing_cert.subject.human_friendly,
            signed_at=status.signer_reported_dt,
            reason=str(reason) if reason is not None else None,
            timestamped=ts is not None,
            timestamp_valid=timestamp_valid,
            timestamp_at=ts.timestamp if ts is not None else None,
            ltv=bool(status.bottom_line and timestamp_valid and ts and self._ltv(reader, sig, ts.timestamp)),
        )

    def _ltv(self, reader: PdfFileReader, sig: EmbeddedPdfSignature, at: datetime) -> bool:
        """PAdES LT as pyHanko's former validate_pdf_ltv_signature(PADES_LT) checked it: with only the
        DSS's certificates and CRLs, no fetching, revocation data required for every certificate,
        the signature and its timestamp validate as of the timestamp's time."""
        try:
            dss = DocumentSecurityStore.read_dss(reader)
        except NoDSSFoundError:
            return False
        kwargs = {
            "trust_roots": [self.ca_cert, *self.tsa_roots],
            "allow_fetching": False,
            "revocation_mode": "require",
            "moment": at,
        }
        status = validate_pdf_signature(
            sig, dss.as_validation_context(kwargs), dss.as_validation_context(kwargs)
        )
        ts = status.timestamp_validity
        return bool(status.bottom_line and ts is not None and ts.intact and ts.valid and ts.trusted)


def _tsa_leaf(
    signed_data: cms.SignedData, certs: list[asn1_x509.Certificate]
) -> asn1_x509.Certificate | None:
    """The certificate that signed a timestamp token (its signer info names it by issuer and serial)."""
    sid = signed_data["signer_infos"][0]["sid"]
    if sid.name != "issuer_and_serial_number":
        key_id = sid.chosen.native
        return next((c for c in certs if c.key_identifier == key_id), None)
    wanted = sid.chosen
    return next(
        (
            c
            for c in certs
            if c.issuer == wanted["issuer"] and c.serial_number == wanted["serial_number"].native
        ),
        None,
    )


def _name(common_name: str) -> x509.Name:
    return dev_certs.dev_name("EVNCPC (development)", common_name)


def dev_ca_key_path(p12_path: Path) -> Path:
    return p12_path.parent / CA_KEY_FILE


def generate_dev_seal(p12_path: Path, password: str, ca_path: Path, crl_url: str | None = None) -> None:
    """Create the development CA + seal certificate once (file lock: several processes may start).
    The CA key is kept next to the seal (0600, encrypted with the seal password) to issue CRLs; with
    `crl_url` the seal certificate names it as its CRL distribution point. Existing keys are never
    replaced: files sealed with them must keep validating."""
    p12_path.parent.mkdir(parents=True, exist_ok=True)
    with open(p12_path.parent / ".keys.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if p12_path.exists() and ca_path.exists():
            return
        now = datetime.now(timezone.utc) - timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("cskh-assistant Dev Signing Root CA")
        ca_cert = dev_certs.root(ca_key, ca_name, now, 3650)
        seal_key = ec.generate_private_key(ec.SECP256R1())
        seal_cert = dev_certs.issue(
            seal_key,
            _name("EVNCPC - Con dấu điện tử (dev)"),
            ca_key,
            ca_name,
            now,
            825,
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            crl_url=crl_url,
        )
        p12 = pkcs12.serialize_key_and_certificates(
            b"seal", seal_key, seal_cert, [ca_cert], serialization.BestAvailableEncryption(password.encode())
        )
        dev_certs.save_key(dev_ca_key_path(p12_path), ca_key, password.encode())
        tmp = p12_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(p12)
        os.replace(tmp, p12_path)
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        log.info("development CA and seal certificate generated in %s", p12_path.parent)


def load_dev_ca(
    p12_path: Path, password: str, ca_path: Path, crl_url: str | None = None
) -> tuple[dev_certs.CrlPublisher | None, str | None]:
    """The development CA's CRL publisher, or why there is none: keys made before issue 17 have no CA
    key (it was discarded) and a seal certificate without a CRL distribution point. Those keys stay:
    seals are then B-T, and files sealed before keep validating."""
    key_path = dev_ca_key_path(p12_path)
    ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    loaded = pkcs12.load_key_and_certificates(p12_path.read_bytes(), password.encode())
    seal_cert = loaded[1]
    regenerate = (
        f"to seal B-LT, move {p12_path.parent} aside so new keys are generated (files sealed before "
        "then validate only against the old ca.pem)"
    )
    if seal_cert is None or not dev_certs.crl_urls(seal_cert):
        return None, (
            f"the development seal certificate in {p12_path} predates CRLs (no CRL distribution point); "
            + regenerate
        )
    if not key_path.exists():
        return None, f"the development CA key {key_path} is missing, so no CRL can be issued; {regenerate}"
    try:
        ca_key = dev_certs.load_ec_key(key_path, password.encode())
    except (ValueError, TypeError) as e:
        return None, f"cannot read the development CA key {key_path}: {e}"
    if ca_key.public_key() != ca_cert.public_key():
        return None, f"{key_path} is not the key of {ca_path}"
    if crl_url and crl_url not in dev_certs.crl_urls(seal_cert):
        # Embedded CRLs do not need it; only a validator that fetches (none here) would miss it.
        log.warning(
            "the seal certificate names %s as its CRL, PUBLIC_BASE_URL now publishes it at %s",
            ", ".join(dev_certs.crl_urls(seal_cert)),
            crl_url,
        )
    return dev_certs.CrlPublisher(ca_key, ca_cert), None
