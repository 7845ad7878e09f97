"""The desk's signing-service client: the side panel gets a request's documents without their file
links (the PDFs print the customer's ID number, address and phone; docs/security.md)."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from agent_desk.signing_client import SigningClient

CODE = "PC05TK0000123"
LINK = "https://ky.example.vn/v1/documents/7/file?variant=original&expires=1&sig=abc"


async def test_the_panel_gets_titles_and_states_but_no_file_links(aiohttp_server) -> None:
    async def get_request(request: web.Request) -> web.Response:
        return web.json_response({"code": CODE, "service_name": "Cấp điện mới"})

    async def get_documents(request: web.Request) -> web.Response:
        doc = {
            "id": 7,
            "kind": "contract",
            "title": "Hợp đồng mua bán điện",
            "status": "signed",
            "status_label": "Đã ký",
            "version": 2,
            "sha256": "ab" * 32,
            "original_url": LINK,
            "signed_url": LINK.replace("original", "signed"),
            "certificate_url": LINK.replace("documents/7", "signing-sessions/x/certificate"),
        }
        return web.json_response({"request_code": CODE, "documents": [doc, "not a document"]})

    app = web.Application()
    app.router.add_get("/v1/requests/{code}", get_request)
    app.router.add_get("/v1/requests/{code}/documents", get_documents)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        info = await SigningClient(session, str(server.make_url("")), "t").request_info(CODE)
    assert info is not None
    assert info["documents"] == [
        {
            "id": 7,
            "title": "Hợp đồng mua bán điện",
            "kind": "contract",
            "status": "signed",
            "status_label": "Đã ký",
            "version": 2,
        }
    ]
    assert "sig=" not in json.dumps(info) and "/file" not in json.dumps(info)
