"""Development certificates (a root and the certificates it issues) for the seal and the
development timestamp authority, and the CRLs those roots publish. Production uses CA-issued ones."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def dev_name(organization: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def root(key: ec.EllipticCurvePrivateKey, name: x509.Name, start: datetime, days: int) -> x509.Certificate:
    """A self-signed CA that issues end-entity certificates only (path length 0, cert/CRL signing)."""
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue(
    key: PrivateKey,
    subject: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    start: datetime,
    days: int,
    usage: x509.KeyUsage,
    extended: x509.ExtendedKeyUsage | None = None,
    crl_url: str | None = None,
) -> x509.Certificate:
    """An end-entity certificate for `key`, signed by the root; with `crl_url`, a CRL distribution
    point naming where the root publishes its CRL (what a validator checks revocation against)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if extended is not None:
        builder = builder.add_extension(extended, critical=True)
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The URLs of the certificate's CRL distribution points (none: an empty list)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def crl(
    issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate, this_update: datetime, days: int
) -> x509.CertificateRevocationList:
    """A complete CRL of a development root: nothing revoked (development roots never revoke), valid
    from `this_update` for `days`. The CRL number is the issue time in seconds, so it only grows,
    across restarts and processes."""
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(this_update + timedelta(days=days))
        .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )


class CrlPublisher:
    """The current CRL of a development root, issued in memory: a new one once the last is older than
    `refresh` (one hour), each valid `days` (a validator then accepts it for days without us)."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        cert: x509.Certificate,
        days: int = 7,
        refresh: timedelta = timedelta(hours=1),
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.key, self.cert, self.days, self.refresh, self._now = key, cert, days, refresh, now
        self._lock = threading.Lock()
        self._current: tuple[datetime, bytes, asn1_crl.CertificateList] | None = None

    def current(self) -> tuple[bytes, asn1_crl.CertificateList]:
        """The CRL (DER and parsed), renewed when stale; thread-safe (seals run in worker threads)."""
        now = self._now().replace(microsecond=0)
        with self._lock:
            if self._current is None or now - self._current[0] >= self.refresh:
                der = crl(self.key, self.cert, now, self.days).public_bytes(serialization.Encoding.DER)
                self._current = (now, der, asn1_crl.CertificateList.load(der))
            return self._current[1], self._current[2]

    def der(self) -> bytes:
        return self.current()[0]


def save_key(path: Path, key: PrivateKey, password: bytes | None = None) -> None:
    """A private key as PKCS#8 PEM, readable by its owner only (0600), encrypted with `password`;
    written to a temporary file first, so a crash never leaves half a key."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)


def load_ec_key(path: Path, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key
