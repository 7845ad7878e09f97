"""`python -m devstack.tsa --port 8820 --keys var/keys/tsa`: a development RFC 3161 timestamp
authority, built on pyHanko's `DummyTimeStamper` (the token is real and signed; the clock is this
machine's). Production sets TSA_URL to a real TSA instead.

On first run it creates its own root and a TSA certificate (extended key usage timeStamping,
critical) in `--keys`; the signing service trusts `tsa-root.pem` to validate the tokens.
`POST /` takes `application/timestamp-query` and answers `application/timestamp-reply`.
"""

from __future__ import annotations

import argparse
import fcntl
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
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing_service import dev_certs

log = logging.getLogger("tsa")
ROOT_FILE, CERT_FILE, KEY_FILE = "tsa-root.pem", "tsa.pem", "tsa.key"
MAX_QUERY = 16 * 1024


def _name(cn: str) -> x509.Name:
    return dev_certs.dev_name("cskh-assistant (development)", cn)


def ensure_keys(keys: Path) -> None:
    """The TSA root and certificate, created once (a file lock: several starts may race)."""
    keys.mkdir(parents=True, exist_ok=True)
    with open(keys / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((keys / f).exists() for f in (ROOT_FILE, CERT_FILE, KEY_FILE)):
            return
        now = datetime.now(timezone.utc) - timedelta(minutes=5)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("cskh-assistant Dev TSA Root")
        root = dev_certs.root(root_key, root_name, now, 3650)
        tsa_key = rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )  # pyHanko's dummy TSA: RSA only
        cert = dev_certs.issue(
            tsa_key,
            _name("cskh-assistant Dev Timestamp Authority"),
            root_key,
            root_name,
            now,
            1825,
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
        )
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


def create_app(keys: Path) -> web.Application:
    stamper = load_stamper(keys)

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

    app = web.Application(client_max_size=MAX_QUERY)
    app.router.add_post("/", stamp)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.tsa", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8820)
    parser.add_argument("--keys", type=Path, default=Path("var/keys/tsa"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    web.run_app(create_app(args.keys), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
