"""`python -m devstack.tsa --port 8820 --keys var/keys/tsa`: a development RFC 3161 timestamp
authority, built on pyHanko's `DummyTimeStamper` (the token is real and signed; the clock is this
machine's). Production sets TSA_URL to a real TSA instead.

On first run it creates its own root and a TSA certificate (extended key usage timeStamping,
critical) in `--keys`; the signing service trusts `tsa-root.pem` to validate the tokens.
`POST /` takes `application/timestamp-query` and answers `application/timestamp-reply`.

Revocation data (PAdES B-LT): the root's key is kept (`tsa-root.key`, 0600) and `GET /crl` serves
the root's CRL (DER, nothing revoked, valid a week, renewed hourly). The TSA certificate names that
URL as its CRL distribution point; it is issued again at start-up when the address changed (same
key and root, so earlier tokens stay valid). Keys made before the root key was kept get no CRL: the
signing service then seals B-T.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing_service import dev_certs

log = logging.getLogger("tsa")
ROOT_FILE, CERT_FILE, KEY_FILE = "tsa-root.pem", "tsa.pem", "tsa.key"
ROOT_KEY_FILE = "tsa-root.key"
CRL_PATH = "/crl"
MAX_QUERY = 16 * 1024


def _name(cn: str) -> x509.Name:
    return dev_certs.dev_name("cskh-assistant (development)", cn)


def _issue_tsa_cert(
    tsa_key: PrivateKeyTypes,
    root_key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate,
    crl_url: str | None,
) -> x509.Certificate:
    if not isinstance(tsa_key, rsa.RSAPrivateKey):
        raise ValueError("the development TSA key must be RSA")
    return dev_certs.issue(
        tsa_key,
        _name("cskh-assistant Dev Timestamp Authority"),
        root_key,
        root.subject,
        datetime.now(timezone.utc) - timedelta(minutes=5),
        1825,
        x509.KeyUsage(True, False, False, False, False, False, False, False, False),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
        crl_url=crl_url,
    )


def ensure_keys(keys: Path, crl_url: str | None = None) -> None:
    """The TSA root (its key kept, to sign CRLs) and certificate, created once (a file lock: several
    starts may race). With `crl_url`, a TSA certificate naming another CRL address is issued again
    (same key, same root: tokens issued before stay valid)."""
    keys.mkdir(parents=True, exist_ok=True)
    with open(keys / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((keys / f).exists() for f in (ROOT_FILE, CERT_FILE, KEY_FILE)):
            if crl_url is not None:
                _reissue_if_moved(keys, crl_url)
            return
        now = datetime.now(timezone.utc) - timedelta(minutes=5)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("cskh-assistant Dev TSA Root")
        root = dev_certs.root(root_key, root_name, now, 3650)
        tsa_key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )  # pyHanko's dummy TSA: RSA only
        cert = _issue_tsa_cert(tsa_key, root_key, root, crl_url)
        dev_certs.save_key(keys / ROOT_KEY_FILE, root_key)
        fd = os.open(keys / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(
                tsa_key.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        (keys / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (keys / ROOT_FILE).write_bytes(root.public_bytes(serialization.Encoding.PEM))
        log.info("development TSA keys created in %s", keys)


def _reissue_if_moved(keys: Path, crl_url: str) -> None:
    cert = x509.load_pem_x509_certificate((keys / CERT_FILE).read_bytes())
    if dev_certs.crl_urls(cert) == [crl_url]:
        return
    if not (keys / ROOT_KEY_FILE).exists():
        log.warning(
            "the TSA keys in %s predate CRLs (root key not kept): timestamps carry no revocation data "
            "and seals stay PAdES B-T; move %s aside for new keys (earlier timestamps then validate "
            "only against the old %s)",
            keys,
            keys,
            ROOT_FILE,
        )
        return
    root = x509.load_pem_x509_certificate((keys / ROOT_FILE).read_bytes())
    tsa_key = serialization.load_der_private_key((keys / KEY_FILE).read_bytes(), None)
    cert = _issue_tsa_cert(tsa_key, dev_certs.load_ec_key(keys / ROOT_KEY_FILE), root, crl_url)
    tmp = keys / (CERT_FILE + ".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, keys / CERT_FILE)
    log.info("TSA certificate issued again: its CRL is now at %s", crl_url)


def crl_publisher(keys: Path) -> dev_certs.CrlPublisher | None:
    """The root's CRL, or None for keys made before the root key was kept."""
    if not (keys / ROOT_KEY_FILE).exists():
        return None
    root = x509.load_pem_x509_certificate((keys / ROOT_FILE).read_bytes())
    return dev_certs.CrlPublisher(dev_certs.load_ec_key(keys / ROOT_KEY_FILE), root)


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def load_stamper(keys: Path) -> DummyTimeStamper:
    ensure_keys(keys)
    cert = asn1_x509.Certificate.load(_der((keys / CERT_FILE).read_bytes()))
    root = asn1_x509.Certificate.load(_der((keys / ROOT_FILE).read_bytes()))
    key = asn1_keys.PrivateKeyInfo.load((keys / KEY_FILE).read_bytes())
    return DummyTimeStamper(
        tsa_cert=cert, tsa_key=key, certs_to_embed=SimpleCertificateStore.from_certs([root])
    )


def create_app(keys: Path, crl_url: str | None = None) -> web.Application:
    """The TSA; `crl_url` is where this server's `GET /crl` is reached (the TSA certificate names it)."""
    ensure_keys(keys, crl_url)
    stamper = load_stamper(keys)
    publisher = crl_publisher(keys)

    async def stamp(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            query = tsp.TimeStampReq.load(body)
            query.native  # noqa: B018 (parses it all: a malformed query fails here, not later)
        except (ValueError, TypeError):
            return web.Response(status=400, text="not a timestamp query")
        reply = stamper.request_tsa_response(query)
        return web.Response(body=reply.dump(), content_type="application/timestamp-reply")

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": "dev-tsa"})

    async def crl(_: web.Request) -> web.Response:
        if publisher is None:
            return web.Response(status=404, text="these TSA keys publish no CRL\n")
        return web.Response(body=publisher.der(), content_type="application/pkix-crl")

    app = web.Application(client_max_size=MAX_QUERY)
    app.router.add_post("/", stamp)
    app.router.add_get("/health", health)
    app.router.add_get(CRL_PATH, crl)
    return app


def public_url(host: str, port: int) -> str:
    """How clients on this machine reach a server bound to `host` (every interface: loopback)."""
    addr = ipaddress.ip_address(host)
    if addr.is_unspecified:
        addr = ipaddress.ip_address("127.0.0.1" if addr.version == 4 else "::1")
    return f"http://[{addr}]:{port}" if addr.version == 6 else f"http://{addr}:{port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.tsa", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8820)
    parser.add_argument("--keys", type=Path, default=Path("var/keys/tsa"))
    parser.add_argument(
        "--public-url", help="base URL clients reach this TSA at (default: from --host and --port)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    base = (args.public_url or public_url(args.host, args.port)).rstrip("/")
    app = create_app(args.keys, base + CRL_PATH)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
