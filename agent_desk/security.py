"""Sessions, CSRF protection and login throttling.

- Session: a random token in an HttpOnly, SameSite=Strict cookie (Secure when the public origin is
  https, or unless served on localhost); the database keeps only its SHA-256. A session ends when it
  has not been used for `idle_timeout` seconds (each request extends it) and in any case
  `session_lifetime` seconds after the login.
- CSRF: every browser gets a random seed cookie; the token put in forms and in the `X-CSRF-Token`
  header of fetch() posts is HMAC(secret key, session cookie hash, seed), so a token is only good with
  the session it was rendered for. Every unsafe request must carry it, and a cross-origin `Origin` or
  `Referer` header is refused outright (the origin being DESK_PUBLIC_ORIGIN when set, else the Host
  header). The seed is rotated at login and logout.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa
from aiohttp import web

from agent_desk import accounts, db
from agent_desk.accounts import Agent
from agent_desk.config import Settings
from agent_desk.desk_texts import TEXTS
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
    if settings.public_origin:  # behind a proxy the desk sees http even when browsers use https
        return settings.public_origin.startswith("https://")
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


def csrf_token_for(settings: Settings, seed: str, session_token: str | None) -> str:
    """Bound to the session cookie the browser presents (its hash; "" before login), valid or not:
    a token from another session is refused, and an expired session still gets its 401, not a 403."""
    session = _hash(session_token) if session_token else ""
    message = f"csrf:{session}:{seed}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """The token to embed in the page being rendered (the seed cookie is set by the middleware)."""
    return csrf_token_for(request.app[SETTINGS], request["csrf_seed"], request.get("session_token"))


def rotate_csrf(request: web.Request) -> None:
    request["csrf_seed"] = secrets.token_urlsafe(32)
    request["csrf_rotated"] = True


def is_api(request: web.Request) -> bool:
    return (
        request.path.startswith("/api/")
        or request.path.startswith("/demo/api/")
        or request.headers.get("X-Requested-With") == "fetch"
        or request.content_type == "application/json"
    )


def forbidden(request: web.Request, message: str) -> web.Response:
    if is_api(request):
        return web.json_response({"error": "forbidden", "message": message}, status=403)
    return web.Response(text=message, status=403)


def expected_origin(request: web.Request) -> str:
    settings: Settings = request.app[SETTINGS]
    return settings.public_origin or f"{request.scheme}://{request.host}".lower()


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid"
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _csrf_ok(request: web.Request) -> bool:
    settings: Settings = request.app[SETTINGS]
    expected = expected_origin(request)
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        if origin.lower() != expected:
            return False
    elif request.headers.get("Referer"):  # no Origin (older browsers): the Referer, when sent
        if _origin_of(request.headers["Referer"]) != expected:
            return False
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed:
        return False
    sent = request.headers.get(CSRF_HEADER)
    if not sent and request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        form = await request.post()  # cached by aiohttp: the handler can read it again
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected_token = csrf_token_for(settings, seed, request.get("session_token"))
    return bool(sent) and hmac.compare_digest(sent or "", expected_token)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    seed = request.cookies.get(CSRF_COOKIE)
    # A path no route serves is a 404 (or 405) whatever the method: there is nothing to protect.
    routed = request.match_info.http_exception is None
    if routed and request.method not in SAFE_METHODS and not await _csrf_ok(request):
        return forbidden(request, TEXTS.get("csrf_failed"))
    request["csrf_seed"] = seed or secrets.token_urlsafe(32)
    request["csrf_rotated"] = not seed
    response = await handler(request)
    if request.get("csrf_rotated"):
        set_cookie(response, request, CSRF_COOKIE, request["csrf_seed"], None)
    return response


def _session_live(created_at: float, expires_at: float, settings: Settings, now: float) -> bool:
    # expires_at slides with use (idle timeout); created_at bounds the whole login (lifetime).
    return expires_at > now and created_at + settings.session_lifetime > now


async def _session_row(request: web.Request, token: str) -> tuple[int, float, float] | None:
    async with request.app[ENGINE].connect() as conn:
        row = (
            await conn.execute(
                sa.select(db.sessions.c.agent_id, db.sessions.c.created_at, db.sessions.c.expires_at).where(
                    db.sessions.c.token_hash == _hash(token)
                )
            )
        ).first()
    return (row.agent_id, row.created_at, row.expires_at) if row is not None else None


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request["agent"] = None
    request["session_expired"] = False
    token = request.cookies.get(SESSION_COOKIE)
    token = token if token and len(token) <= 128 else None
    request["session_token"] = token
    if token:
        settings: Settings = request.app[SETTINGS]
        engine = request.app[ENGINE]
        row = await _session_row(request, token)
        now = time.time()
        if row is not None and _session_live(row[1], row[2], settings, now):
            agent_id, created_at, expires_at = row
            request["agent"] = await accounts.get(engine, agent_id)
            extended = min(now + settings.idle_timeout, created_at + settings.session_lifetime)
            # Each use extends the session; written at most once a minute, not on every request.
            if request["agent"] is not None and extended - expires_at > min(60, settings.idle_timeout / 10):
                async with engine.begin() as conn:
                    await conn.execute(
                        db.sessions.update()
                        .where(db.sessions.c.token_hash == _hash(token))
                        .values(expires_at=extended)
                    )
        elif row is not None:
            async with engine.begin() as conn:
                await conn.execute(db.sessions.delete().where(db.sessions.c.token_hash == _hash(token)))
        # A session cookie that opens nothing: idle, too old, logged out elsewhere or revoked.
        request["session_expired"] = request["agent"] is None
    return await handler(request)


async def session_valid(request: web.Request) -> bool:
    """Whether the request's session is still live, without extending it (long-lived streams)."""
    token = request.get("session_token")
    row = await _session_row(request, token) if token else None
    return row is not None and _session_live(row[1], row[2], request.app[SETTINGS], time.time())


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
        if not request.path.startswith("/static/"):
            # Pages show customers' conversations: never kept by the browser, so Back after logging
            # out asks the server again (and lands on the login page) instead of showing the queue.
            response.headers.setdefault("Cache-Control", "no-store")
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
                expires_at=now + min(settings.idle_timeout, settings.session_lifetime),
            )
        )
    set_cookie(response, request, SESSION_COOKIE, token, settings.session_lifetime)
    request["session_token"] = token  # what is rendered from now on is bound to the new session
    rotate_csrf(request)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with request.app[ENGINE].begin() as conn:
            await conn.execute(db.sessions.delete().where(db.sessions.c.token_hash == _hash(token)))
    response.del_cookie(SESSION_COOKIE, path="/")
    request["session_token"] = None
    rotate_csrf(request)


def login_required(role: str | None = None) -> Callable[[Handler], Handler]:
    def decorator(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            agent: Agent | None = request["agent"]
            if agent is None:
                if is_api(request) or request.method not in SAFE_METHODS:
                    return web.json_response(
                        {"error": "unauthorized", "message": TEXTS.get("login_again")}, status=401
                    )
                query = {"next": request.path_qs} if request.path_qs != "/" else {}
                if request.get("session_expired"):
                    query["expired"] = "1"  # the login page says why
                response = web.HTTPFound("/login" + ("?" + urlencode(query) if query else ""))
                if request.get("session_expired"):
                    response.del_cookie(SESSION_COOKIE, path="/")
                raise response
            if role is not None and agent.role != role:
                return forbidden(request, TEXTS.get("supervisors_only"))
            # Trainers: the workbench (/training...) only, never the queue or customers' conversations.
            if agent.role == accounts.TRAINER and not _workbench_path(request.path):
                return forbidden(request, TRAINER_ONLY_MESSAGE)
            return await handler(request)

        return wrapper

    return decorator


def _workbench_path(path: str) -> bool:
    return path == "/training" or path.startswith("/training/")


TRAINER_ONLY_MESSAGE = TEXTS.get("trainer_only")


def roles_required(*roles: str) -> Callable[[Handler], Handler]:
    """Logged in with one of `roles` (e.g. roles_required("trainer", "supervisor") for the workbench);
    other accounts get the desk's Vietnamese 403 page."""
    allowed = frozenset(roles)

    def decorator(handler: Handler) -> Handler:
        @login_required()
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            if request["agent"].role not in allowed:
                return forbidden(request, TEXTS.get("trainers_and_supervisors_only"))
            return await handler(request)

        return wrapper

    return decorator


K = TypeVar("K", bound=Hashable)


class _Failures(Generic[K]):
    """Recent failure times per key, in bounded memory: at most `capacity` keys, `keep` times each.

    Keys sit in two tiers ordered by their last failure. "Cold" keys (fewer than `protect` failures)
    are evicted first, oldest first: losing one gives an attacker back at most a few tries. "Hot" keys,
    the ones that block, go (oldest first) only once no cold key is left, so a flood of new keys
    cannot reset them; filling the hot tier takes `protect` counted failures per key, and every
    failure also counts against its address."""

    def __init__(self, capacity: int, keep: int, protect: int, window: float) -> None:
        self.capacity, self.keep, self.protect, self.window = capacity, keep, protect, window
        self._cold: OrderedDict[K, deque[float]] = OrderedDict()
        self._hot: OrderedDict[K, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cold) + len(self._hot)

    def _recent(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def count(self, key: K, now: float) -> int:
        times = self._cold.get(key)
        if times is None:
            times = self._hot.get(key)
        return len(self._recent(times, now)) if times is not None else 0

    def add(self, key: K, now: float) -> None:
        times = self._cold.pop(key, None)
        if times is None:
            times = self._hot.pop(key, None)
        if times is None:
            times = deque(maxlen=self.keep)
        self._recent(times, now).append(now)
        (self._hot if len(times) >= self.protect else self._cold)[key] = times  # now the newest
        while len(self) > self.capacity:
            (self._cold or self._hot).popitem(last=False)

    def discard(self, key: K) -> None:
        self._cold.pop(key, None)
        self._hot.pop(key, None)


def address_key(address: str) -> str:
    """The unit an address is counted in: an IPv4 address, or the /64 of an IPv6 one (one machine
    usually holds a whole /64, so counting single addresses would let it rotate past any limit)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class LoginThrottle:
    """Failed logins counted per (name, address) pair, per name and per address, in `window` seconds.

    Why this design: a block per user name alone lets anyone lock an agent out by typing wrong
    passwords for their name from anywhere. So the name's limit (`limit`, 5) applies per pair: an
    attacker's failures block the attacker's address, never the agent at their own desk. Spread over
    many addresses, the name's total (`user_limit`, 20) puts it "under attack": from then on an
    address that has failed `attacked_limit` (2) times on it is refused. An address with no failure on
    the name still gets in, so the agent is never locked out, and a botnet pays two tries per address.
    Per address (`ip_limit`, 30: a call centre behind one NAT shares an address) any name is refused.
    A success clears only its own pair: it must not forgive another address's failures.

    The three maps are bounded (`capacity` keys each) and evict cold keys before blocking ones, oldest
    first (see _Failures): flooding memory with new names or addresses does not reset a block.
    """

    def __init__(
        self,
        limit: int = 5,
        ip_limit: int = 30,
        user_limit: int = 20,
        attacked_limit: int = 2,
        window: float = 900,
        capacity: int = 10_000,
    ) -> None:
        self.limit = limit
        self.ip_limit = ip_limit
        self.user_limit = user_limit
        self.attacked_limit = attacked_limit
        self.window = window
        self.capacity = capacity
        self._pairs: _Failures[tuple[str, str]] = _Failures(capacity, limit, attacked_limit, window)
        self._users: _Failures[str] = _Failures(capacity, user_limit, user_limit, window)
        self._addresses: _Failures[str] = _Failures(capacity, ip_limit, ip_limit, window)

    def blocked(self, user: str, address: str) -> bool:
        now = time.monotonic()
        where = address_key(address)
        if self._addresses.count(where, now) >= self.ip_limit:
            return True
        pair = self._pairs.count((user, where), now)
        if pair >= self.limit:
            return True
        return pair >= self.attacked_limit and self._users.count(user, now) >= self.user_limit

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        where = address_key(address)
        self._pairs.add((user, where), now)
        self._users.add(user, now)
        self._addresses.add(where, now)

    def succeeded(self, user: str, address: str) -> None:
        self._pairs.discard((user, address_key(address)))

    def sizes(self) -> dict[str, int]:
        return {"pairs": len(self._pairs), "users": len(self._users), "addresses": len(self._addresses)}


THROTTLE = web.AppKey("throttle", LoginThrottle)


def client_ip(request: web.Request) -> str:
    return request.remote or "?"
