"""Sessions, CSRF protection and login throttling.

- Session: a random token in an HttpOnly, SameSite=Strict cookie (Secure unless served on localhost);
  the database keeps only its SHA-256, with an expiry.
- CSRF: every browser gets a random seed cookie; the token put in forms and in the `X-CSRF-Token`
  header of fetch() posts is HMAC(secret key, seed). Every unsafe request must carry it, and a
  cross-origin `Origin` header is refused outright. The seed is rotated at login and logout.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiohttp import web

from agent_desk import accounts, db
from agent_desk.accounts import Agent
from agent_desk.config import Settings
from agent_desk.keys import ENGINE, SETTINGS

SESSION_COOKIE = "desk_session"
CSRF_COOKIE = "desk_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def host_name(request: web.Request) -> str:
    """The Host header without its port (request.url is avoided: yarl rejects 'host:port' there)."""
    host = request.host or ""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.split(":", 1)[0].lower()


def cookie_secure(request: web.Request, settings: Settings) -> bool:
    return host_name(request) not in settings.insecure_hosts


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request, request.app[SETTINGS]),
    )


def csrf_token_for(settings: Settings, seed: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """The token to embed in the page being rendered (the seed cookie is set by the middleware)."""
    return csrf_token_for(request.app[SETTINGS], request["csrf_seed"])


def rotate_csrf(request: web.Request) -> None:
    request["csrf_seed"] = secrets.token_urlsafe(32)
    request["csrf_rotated"] = True


def _is_api(request: web.Request) -> bool:
    return (
        request.path.startswith("/api/")
        or request.path.startswith("/demo/api/")
        or request.headers.get("X-Requested-With") == "fetch"
        or request.content_type == "application/json"
    )


def forbidden(request: web.Request, message: str) -> web.Response:
    if _is_api(request):
        return web.json_response({"error": "forbidden", "message": message}, status=403)
    return web.Response(text=message, status=403)


async def _csrf_ok(request: web.Request) -> bool:
    settings: Settings = request.app[SETTINGS]
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        expected = f"{request.scheme}://{request.host}"
        if origin != expected:
            return False
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed:
        return False
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        form = await request.post()  # cached by aiohttp: the handler can read it again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    return bool(sent) and hmac.compare_digest(sent or "", csrf_token_for(settings, seed))


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    seed = request.cookies.get(CSRF_COOKIE)
    if request.method not in SAFE_METHODS and not await _csrf_ok(request):
        return forbidden(request, "Phiên làm việc không hợp lệ (CSRF). Hãy tải lại trang và thử lại.")
    request["csrf_seed"] = seed or secrets.token_urlsafe(32)
    request["csrf_rotated"] = not seed
    response = await handler(request)
    if request.get("csrf_rotated"):
        set_cookie(response, request, CSRF_COOKIE, request["csrf_seed"], None)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["agent"] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 128:
        engine = request.app[ENGINE]
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(db.sessions.c.agent_id, db.sessions.c.expires_at).where(
                        db.sessions.c.token_hash == _hash(token)
                    )
                )
            ).first()
        if row is not None and row.expires_at > time.time():
            request["agent"] = await accounts.get(engine, row.agent_id)
    return await handler(request)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    if not response.prepared:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
    if isinstance(response, web.HTTPException) and not isinstance(response, web.HTTPSuccessful):
        raise response
    return response


async def start_session(request: web.Request, response: web.StreamResponse, agent: Agent) -> None:
    settings: Settings = request.app[SETTINGS]
    token = secrets.token_urlsafe(32)
    now = time.time()
    async with request.app[ENGINE].begin() as conn:
        # Housekeeping: drop this agent's expired sessions.
        await conn.execute(
            db.sessions.delete().where(db.sessions.c.agent_id == agent.id, db.sessions.c.expires_at < now)
        )
        await conn.execute(
            db.sessions.insert().values(
                token_hash=_hash(token),
                agent_id=agent.id,
                created_at=now,
                expires_at=now + settings.session_lifetime,
            )
        )
    set_cookie(response, request, SESSION_COOKIE, token, settings.session_lifetime)
    rotate_csrf(request)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[ENGINE].begin() as conn:
            await conn.execute(db.sessions.delete().where(db.sessions.c.token_hash == _hash(token)))
    response.del_cookie(SESSION_COOKIE, path="/")
    rotate_csrf(request)


def login_required(role: str | None = None) -> Callable[[Handler], Handler]:
    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            agent: Agent | None = request["agent"]
            if agent is None:
                if _is_api(request) or request.method not in SAFE_METHODS:
                    return web.json_response(
                        {"error": "unauthorized", "message": "Hãy đăng nhập lại."}, status=401
                    )
                raise web.HTTPFound(f"/login?next={request.path_qs}" if request.path != "/" else "/login")
            if role is not None and agent.role != role:
                return forbidden(request, "Chức năng này chỉ dành cho giám sát viên.")
            return await handler(request)

        return wrapper

    return decorator


class LoginThrottle:
    """Failed logins allowed per key in `window` seconds: 5 per user name ("user:..."), 30 per client
    address ("ip:...": higher, because a call centre behind one NAT or proxy shares an address)."""

    def __init__(self, limit: int = 5, ip_limit: int = 30, window: float = 900) -> None:
        self.limit = limit
        self.ip_limit = ip_limit
        self.window = window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        q = self._failures[key]
        cutoff = time.monotonic() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(
            len(self._recent(k)) >= (self.ip_limit if k.startswith("ip:") else self.limit) for k in keys
        )

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for k in keys:
            self._recent(k).append(now)
        if len(self._failures) > 10_000:  # bound memory under a spray attack
            self._failures.clear()

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            if not k.startswith("ip:"):  # one success must not reset an address spraying many names
                self._failures.pop(k, None)


def client_ip(request: web.Request) -> str:
    return request.remote or "?"
