"""The service seal: PAdES signatures with pyHanko, and their validation.

Development: a CA and a seal certificate are generated on first run into `<var>/keys/` (the CA key is
not kept). Production: SEAL_P12_PATH / SEAL_P12_PASSWORD / SEAL_CA_PATH point to a CA-issued seal.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
from pyhanko_certvalidator import ValidationContext

from . import dev_certs
from .settings import Settings

log = logging.getLogger(__name__)

SEAL_FIELD = "KhachHangKyOTP"
# CMS with an EC P-256 seal and a 2-certificate chain is ~2 KB; 8 KB leaves room for an RSA-4096
# production chain (too small fails the whole batch cleanly, nothing is stored).
BYTES_RESERVED = 8192
# With a timestamp token (a second CMS with the TSA's chain) in the signature.
BYTES_RESERVED_TSA = 16384


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


class Sealer:
    def __init__(
        self,
        p12_path: Path,
        password: str,
        ca_path: Path,
        tsa_url: str | None = None,
        tsa_roots: list[Path] | None = None,
    ) -> None:
        self.signer = signers.SimpleSigner.load_pkcs12(str(p12_path), passphrase=password.encode())
        if self.signer is None:
            raise ValueError(f"cannot load the seal from {p12_path} (wrong password or file)")
        ca_pem = ca_path.read_bytes()
        self.ca_cert = asn1_x509.Certificate.load(
            x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
        )
        self.ca_pem = ca_pem
        # B-T when a timestamp authority is configured (TSA_URL); its roots validate the tokens.
        self.timestamper = RequestsHTTPTimeStamper(tsa_url, timeout=10) if tsa_url else None
        self.tsa_roots = [
            asn1_x509.Certificate.load(
                x509.load_pem_x509_certificate(p.read_bytes()).public_bytes(serialization.Encoding.DER)
            )
            for p in tsa_roots or []
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        if settings.generate_dev_ca:
            generate_dev_seal(settings.seal_p12_path, settings.seal_p12_password, settings.seal_ca_path)
        roots = [settings.tsa_root_path] if settings.tsa_root_path else []
        return cls(
            settings.seal_p12_path, settings.seal_p12_password, settings.seal_ca_path, settings.tsa_url, roots
        )

    def seal(self, pdf: bytes, req: SealRequest) -> bytes:
        """Add one PAdES signature to `pdf` (B-T with a TSA, else B-B); raises on an unreadable PDF or
        an unreachable TSA (nothing is then stored: the batch fails as a whole)."""
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        meta = signers.PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            name=req.signer_name,
            reason=req.reason,
            location=req.location,
            contact_info=req.contact_info,
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
            timestamp_valid=bool(ts is not None and ts.intact and ts.valid and ts.trusted),
            timestamp_at=ts.timestamp if ts is not None else None,
        )


def _name(common_name: str) -> x509.Name:
    return dev_certs.dev_name("EVNCPC (development)", common_name)


def generate_dev_seal(p12_path: Path, password: str, ca_path: Path) -> None:
    """Create the development CA + seal certificate once (file lock: several processes may start)."""
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
        )
        p12 = pkcs12.serialize_key_and_certificates(
            b"seal", seal_key, seal_cert, [ca_cert], serialization.BestAvailableEncryption(password.encode())
        )
        tmp = p12_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(p12)
        os.replace(tmp, p12_path)
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        log.info("development CA and seal certificate generated in %s", p12_path.parent)
