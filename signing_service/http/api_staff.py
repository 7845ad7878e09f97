"""Staff / CMIS endpoints that change a request (service token, no chat headers; audited)."""

from __future__ import annotations

import re

from aiohttp import web

from .. import staff_flow
from ..errors import ApiError
from .chat_headers import staff_only
from .inputs import json_body, opt_str, request_code
from .keys import ctx

routes = web.RouteTableDef()
# A staff login as it goes into the audit trail: no control characters, no spaces.
STAFF_LOGIN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


@routes.post("/v1/requests/{code}/advance")
async def advance(request: web.Request) -> web.Response:
    """Move the request to its next step: `{"current_step": "<step name>", ...}`."""
    staff_only(request)
    code = request_code(request.match_info["code"])
    body = await json_body(request)
    by = opt_str(body, "by", 64) or "staff"
    if not STAFF_LOGIN.match(by):
        raise ApiError(400, "invalid_field", field="by")
    return web.json_response(await staff_flow.advance(ctx(request), code, by))
