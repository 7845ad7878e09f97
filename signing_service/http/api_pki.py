"""The development seal CA's public documents, for validators (no token: they are public by nature).

`GET /pki/ca.crl`: the CA's current CRL (DER, `application/pkix-crl`), the address the seal
certificate names as its CRL distribution point; issued by this service with the kept development CA
key, valid a week and renewed every hour. 404 when this service does not issue it (a CA-issued seal
in production, or development keys made before the CA key was kept).
`GET /pki/ca.pem`: the CA certificate the seals chain to (PEM), the one to trust.
"""

from __future__ import annotations

from aiohttp import web

from ..pades import CA_CERT_PATH, CRL_PATH
from .keys import ctx

routes = web.RouteTableDef()
# Validators may cache for a few minutes; a new CRL is issued every hour and valid for days.
_CACHE = "public, max-age=300"


@routes.get(CRL_PATH)
async def ca_crl(request: web.Request) -> web.Response:
    publisher = ctx(request).sealer.dev_crls
    if publisher is None:
        return web.Response(status=404, text="no CRL is published here\n")
    return web.Response(
        body=publisher.der(), content_type="application/pkix-crl", headers={"Cache-Control": _CACHE}
    )


@routes.get(CA_CERT_PATH)
async def ca_pem(request: web.Request) -> web.Response:
    return web.Response(
        body=ctx(request).sealer.ca_pem,
        content_type="application/x-pem-file",
        headers={"Cache-Control": _CACHE},
    )
