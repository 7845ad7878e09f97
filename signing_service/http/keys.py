"""What the aiohttp application holds for its handlers: the domain context and the lookup limiters."""

from __future__ import annotations

from aiohttp import web

from ..context import Context
from ..rate_limit import CodeLookupLimiter, NameLookupLimiter

CTX: web.AppKey[Context] = web.AppKey("ctx", Context)
NAME_LOOKUPS: web.AppKey[NameLookupLimiter] = web.AppKey("name_lookups", NameLookupLimiter)
CODE_LOOKUPS: web.AppKey[CodeLookupLimiter] = web.AppKey("code_lookups", CodeLookupLimiter)


def ctx(request: web.Request) -> Context:
    return request.app[CTX]
