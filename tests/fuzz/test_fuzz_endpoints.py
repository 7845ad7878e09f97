"""Thousands of malformed and hostile requests to every public endpoint of a real stack
(Rasa REST and the Zalo/Telegram webhooks, the signing service, the agent desk and its web chat).

Afterwards: no response was a 5xx, every process is alive and healthy, what was acknowledged is
stored (REST turns are in the trackers), the demo data is unchanged, and no log line carries a
token, a secret or the demo customer's phone number / e-mail (which the fuzz sends as chat text).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sqlite3
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devstack import model, processes
from tests.connectors.conftest import TG_SECRET, TG_TOKEN, ZALO_APP_ID, ZALO_OA_SECRET
from tests.connectors.e2e_support import ChannelStack
from tests.connectors.tg_helpers import next_update_id, text_update
from tests.connectors.zalo_helpers import event, signed
from tests.fuzz.payloads import DEMO_PHONE, WRONG_TYPES, hostile_texts, raw_bodies

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20261125
CODE = "PC05TK0000123"


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelStack]:
    root = tmp_path_factory.mktemp("fuzz")
    cs = ChannelStack(root, _model())
    cs.stack.env["DESK_DATABASE_URL"] = f"sqlite:///{root / 'desk.db'}"
    try:
        s, log = cs.stack, root / "log"
        # Started here rather than with cs.start(): a busy machine needs more than its 300 s.
        s.start(processes.signing_service(s.ports, s.env, log))
        s.start(processes.action_server(s.ports, s.env, log))
        s.start(processes.rasa_server(s.ports, s.env, log, cs.model, workers=2), 900)  # as in production
        s.start(processes.agent_desk(s.ports, s.env, log))
        yield cs
    finally:
        cs.stop()


# 5xx answers that are not bugs of ours, reported in the output but not failures: the desk's web
# chat answers 502/504 "try again" when Rasa is too slow under this load. (Rasa's own REST channel
# answered 500 to bodies that are not a JSON object until deploy/rest_guard.py.)
TOLERATED = {("desk", 502), ("desk", 504)}


class Recorder:
    def __init__(self) -> None:
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[tuple[str, int, str, str]] = []
        self.tolerated: list[tuple[str, int, str, str]] = []

    def add(self, endpoint: str, status: int, what: Any, answer: bytes = b"") -> None:
        self.statuses[(endpoint, status)] += 1
        if status >= 500 or status == 0:
            item = (endpoint, status, repr(what)[:100], answer[:150].decode(errors="replace"))
            (self.tolerated if (endpoint, status) in TOLERATED else self.server_errors).append(item)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())


async def _request(
    s: aiohttp.ClientSession,
    sem: asyncio.Semaphore,
    rec: Recorder,
    endpoint: str,
    method: str,
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    async with sem:
        error: BaseException | None = None
        for attempt in (1, 2):
            try:
                async with s.request(method, url, data=data, headers=headers) as r:
                    body = await r.read()
                    rec.add(endpoint, r.status, data[:80] if data else url[-80:], body)
                    return r.status, body
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as e:
                # A pooled keep-alive connection the server had just closed (after refusing an
                # oversized body, say): a real client sends again once. A server that crashed
                # resets the second try too, and that is recorded.
                error = e
                if attempt == 1:
                    continue
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                error = e
            break
        rec.add(endpoint, 0, f"{error!r} {data[:60] if data else url[-60:]!r}")
        return 0, b""


def _user_turns_in_broker(db: Path, senders: set[str]) -> dict[str, int]:
    """User messages per conversation in the SQL event broker's `events` table."""
    counts: Counter[str] = Counter()
    with sqlite3.connect(db) as conn:
        for sender_id, data in conn.execute("SELECT sender_id, data FROM events"):
            if sender_id in senders and json.loads(data).get("event") == "user":
                counts[sender_id] += 1
    return dict(counts)


def _secrets(cs: ChannelStack) -> list[str]:
    env = cs.stack.env
    return [
        env["RASA_AUTH_TOKEN"],
        env["SIGNING_SERVICE_TOKEN"],
        TG_TOKEN,
        TG_SECRET,
        ZALO_OA_SECRET,
        "AT-e2e",
        "RT-e2e",
        DEMO_PHONE,
        "an@example.com",
    ]


async def test_fuzz_every_public_endpoint(fuzz_stack: ChannelStack) -> None:
    cs, st = fuzz_stack, fuzz_stack.stack
    rng = random.Random(SEED)
    rec = Recorder()
    sem = asyncio.Semaphore(8)
    rasa, signing = st.rasa_url, st.signing_url
    desk = f"http://127.0.0.1:{st.ports.desk}"
    auth = {"Authorization": f"Bearer {st.token}", "Content-Type": "application/json"}
    # Chat texts up to 4,096 characters (Telegram's limit; Zalo and the web chat allow less). Longer
    # texts reach only the internal REST channel; a 200,000-character one is answered since the
    # tokenizer keeps 120 tokens (tests/conversations/test_general.py, docs/security.md).
    texts = hostile_texts(rng, 500, huge=4_096)
    before = await asyncio.to_thread(_demo_snapshot, signing, st.token)
    acked: dict[str, int] = Counter()
    timeout = aiohttp.ClientTimeout(total=120)

    async with aiohttp.ClientSession(timeout=timeout) as s:
        # -- Rasa REST channel: hostile texts (40 conversations), wrong JSON types, broken bodies.
        senders = [f"fuzz-{uuid.uuid4().hex[:8]}" for _ in range(40)]

        async def rest_turns(sender: str, chunk: list[str]) -> None:
            for text in chunk:  # one conversation's turns in order
                status, _ = await _request(
                    s,
                    sem,
                    rec,
                    "rasa-rest",
                    "POST",
                    f"{rasa}/webhooks/rest/webhook",
                    json.dumps({"sender": sender, "message": text}).encode(),
                    {"Content-Type": "application/json"},
                )
                if status == 200:
                    acked[sender] += 1

        await asyncio.gather(*(rest_turns(snd, texts[i::40]) for i, snd in enumerate(senders)))
        wrong = [
            json.dumps({"sender": a, "message": b}).encode() for a in WRONG_TYPES for b in WRONG_TYPES[:6]
        ]
        wrong += [
            json.dumps({"sender": "fuzz-w", "message": m, "metadata": md}).encode()
            for m in ("xin chào",)
            for md in WRONG_TYPES
        ]
        await asyncio.gather(
            *(
                _request(
                    s,
                    sem,
                    rec,
                    endpoint,
                    "POST",
                    f"{rasa}/webhooks/rest/webhook",
                    b,
                    {"Content-Type": "application/json"},
                )
                for endpoint, bodies in (("rasa-rest", wrong), ("rasa-rest-raw", raw_bodies(rng)))
                for b in bodies
            )
        )

        # -- Telegram webhook: hostile texts in valid updates, malformed updates, bad secrets.
        tg = f"{rasa}/webhooks/telegram/webhook"
        tg_h = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET, "Content-Type": "application/json"}
        tg_bodies = [
            json.dumps(text_update(7_000_000 + i % 30, t, next_update_id())).encode()
            for i, t in enumerate(texts[:300])
        ]
        for w in WRONG_TYPES:
            u = text_update(7_000_100, "x", next_update_id())
            for path in (
                ("update_id",),
                ("message", "text"),
                ("message", "chat"),
                ("message", "chat", "id"),
                ("message", "from"),
                ("message",),
            ):
                v = json.loads(json.dumps(u))
                tgt = v
                for k in path[:-1]:
                    tgt = tgt[k]
                tgt[path[-1]] = w
                tg_bodies.append(json.dumps(v).encode())
        tg_bodies += raw_bodies(rng)
        await asyncio.gather(*(_request(s, sem, rec, "telegram", "POST", tg, b, tg_h) for b in tg_bodies))
        await asyncio.gather(
            *(
                _request(s, sem, rec, "telegram", "POST", tg, tg_bodies[0], h)
                for h in (
                    {},
                    {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                    {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET + "\x00"},
                    {"X-Telegram-Bot-Api-Secret-Token": "é" * 300},
                )
            )
        )

        # -- Zalo webhook: signed hostile events, signed malformed events, bad/missing MACs.
        zl = f"{rasa}/webhooks/zalo/webhook"
        zalo: list[tuple[bytes, dict[str, str]]] = [
            signed(event("user_send_text", str(6_142_000_000_000 + i % 30), t), ZALO_APP_ID, ZALO_OA_SECRET)
            for i, t in enumerate(texts[:300])
        ]
        for w in WRONG_TYPES:
            for key in ("sender", "message", "event_name", "timestamp", "app_id"):
                body = event("user_send_text", "6142000000999", "x")
                body[key] = w
                zalo.append(signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        good_raw, good_h = zalo[0]
        zalo += [
            (b, {"X-ZEvent-Signature": good_h["X-ZEvent-Signature"], "Content-Type": "application/json"})
            for b in raw_bodies(rng)
        ]
        zalo += [
            (good_raw, h) for h in ({}, {"X-ZEvent-Signature": "mac=00"}, {"X-ZEvent-Signature": "x" * 5000})
        ]
        await asyncio.gather(*(_request(s, sem, rec, "zalo", "POST", zl, b, h) for b, h in zalo))

        # -- Signing service: hostile path/query values, wrong JSON types, no/forged token.
        calls: list[tuple[str, str, bytes | None, dict[str, str]]] = []
        for t in texts[:250]:
            q = urllib.parse.quote(t[:3000], safe="")
            calls += [
                ("GET", f"/v1/requests/{q}", None, auth),
                ("GET", f"/v1/requests?unit=PC05TK&name={q}", None, auth),
                ("GET", f"/v1/units?q={q}", None, auth),
                ("GET", f"/v1/documents/1/file?variant=original&expires={q}&sig={q}", None, {}),
            ]
        for w in WRONG_TYPES:
            calls += [
                # Amendments only on a request without documents, so the demo data stays unchanged.
                (
                    "POST",
                    "/v1/requests/PC05TK0000456/amendments",
                    json.dumps({"document_id": w, "text": w}).encode(),
                    auth,
                ),
                (
                    "POST",
                    "/v1/signing-sessions",
                    json.dumps({"request_code": w, "document_ids": w, "channel": w, "consent": w}).encode(),
                    auth,
                ),
                (
                    "POST",
                    "/v1/signing-sessions",
                    json.dumps(
                        {"request_code": CODE, "document_ids": [w], "channel": "sms", "consent": False}
                    ).encode(),
                    auth,
                ),
                (
                    "POST",
                    f"/v1/signing-sessions/{urllib.parse.quote(str(w)[:200], safe='')}/verify",
                    json.dumps({"otp": w}).encode(),
                    auth,
                ),
            ]
        calls += [("POST", "/v1/signing-sessions", b, auth) for b in raw_bodies(rng)]
        calls += [
            ("GET", f"/v1/requests/{CODE}", None, h)
            for h in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic Zm9vOmJhcg=="},
                {"Authorization": "Bearer " + "é" * 1000},
            )
        ]
        await asyncio.gather(
            *(_request(s, sem, rec, "signing", m, signing + p, b, h) for m, p, b, h in calls)
        )

    # -- Agent desk: login form and the public web chat, with a real session + CSRF token.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as d:
        status, page = await _request(d, sem, rec, "desk", "GET", f"{desk}/demo")
        m = re.search(rb'name="csrf-token" content="([^"]+)"', page)
        assert status == 200 and m, "demo page without a CSRF token"
        csrf = {"X-CSRF-Token": m.group(1).decode()}
        desk_calls: list[tuple[str, str, bytes | None, dict[str, str]]] = []
        for t in texts[:120]:
            desk_calls.append(
                (
                    "POST",
                    "/demo/api/send",
                    json.dumps({"message": t, "cursor": rng.choice(WRONG_TYPES)}).encode(),
                    {**csrf, "Content-Type": "application/json"},
                )
            )
            form = urllib.parse.urlencode(
                {"username": t[:2000], "password": t[:2000], "csrf_token": csrf["X-CSRF-Token"]}
            ).encode()
            desk_calls.append(("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"}))
            desk_calls.append(
                ("GET", f"/demo/api/messages?after={urllib.parse.quote(t[:500], safe='')}", None, {})
            )
        desk_calls += [
            ("POST", "/demo/api/send", b, {**csrf, "Content-Type": "application/json"})
            for b in raw_bodies(rng)
        ]
        desk_calls += [
            ("GET", p, None, {})
            for p in (
                "/",
                "/api/queue",
                "/conversations/1",
                "/supervisor",
                "/conversations/99999999999999999999",
                "/canned",
            )
        ]
        desk_calls += [("POST", "/conversations/1/reply", b"text=hi", {}), ("POST", "/login", b"x", {})]
        await asyncio.gather(
            *(_request(d, sem, rec, "desk", m_, desk + p, b, h) for m_, p, b, h in desk_calls)
        )

    summary = dict(sorted(Counter({f"{e} {c}": n for (e, c), n in rec.statuses.items()}).items()))
    print(f"\n[fuzz] {rec.total} requests; status counts: {summary}")
    for item in rec.tolerated:
        print(f"[fuzz] tolerated: {item}")
    for item in rec.server_errors:
        print(f"[fuzz] SERVER ERROR: {item}")
    assert rec.total >= 2000
    assert not rec.server_errors, rec.server_errors[:20]

    # No crash: every process still runs and answers its health check.
    for name, proc in st.procs.items():
        assert proc.popen and proc.popen.poll() is None, f"{name} died"
        proc.wait_healthy(30)

    # No secret or personal data in any log.
    names, leaks = await asyncio.to_thread(_scan_logs, st.root / "log", _secrets(cs))
    print(
        f"[fuzz] {len(acked)} REST conversations checked in their trackers; logs scanned: {names}; "
        f"leaks: {leaks or 'none'}"
    )
    assert len(names) >= 4
    assert not leaks, leaks

    # Nothing acknowledged is lost: each REST turn answered 200 is in the durable record of the
    # conversation, the event broker's table. (Not the tracker API: the fuzz sends "/session_start",
    # and Rasa's in-memory tracker store keeps only the latest session, while the broker keeps all.)
    stored = await asyncio.to_thread(_user_turns_in_broker, Path(st.env["RASA_EVENTS_DB"]), set(acked))
    lost = {sender: (n, stored.get(sender, 0)) for sender, n in acked.items() if stored.get(sender, 0) != n}
    print(f"[fuzz] {sum(acked.values())} acknowledged REST turns; lost (acked, stored): {lost or 'none'}")
    assert not lost, lost
    # The demo data the fuzz must not change is unchanged, and the assistant still works.
    assert await asyncio.to_thread(_demo_snapshot, signing, st.token) == before
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async with s.post(
            f"{rasa}/webhooks/rest/webhook",
            json={"sender": f"fuzz-after-{uuid.uuid4().hex[:6]}", "message": CODE},
        ) as r:
            assert r.status == 200 and CODE in json.dumps(await r.json(), ensure_ascii=False)


def _scan_logs(log_dir: Path, secrets: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    names, leaks = [], {}
    for log in sorted(log_dir.glob("*.log")):
        names.append(log.name)
        text = log.read_text(errors="replace")
        found = [sec[:6] + "…" for sec in secrets if sec in text]
        if found:
            leaks[log.name] = found
    return names, leaks


def _demo_snapshot(signing: str, token: str) -> Any:
    import urllib.request

    out = {}
    for path in (f"/v1/requests/{CODE}", f"/v1/requests/{CODE}/documents", "/v1/requests/PC04HC0004567"):
        req = urllib.request.Request(signing + path, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 (loopback)
            body = json.loads(r.read())
        for d in body.get("documents", []):  # links are re-signed per call
            d.pop("original_url", None)
            d.pop("signed_url", None)
            d.pop("links_expire_at", None)
        out[path] = body
    return out


def _model() -> Path:
    """CSKH_MODEL=<file> runs against a given model (e.g. while the current data is training)."""
    given = os.environ.get("CSKH_MODEL")
    return Path(given) if given else model.ensure_model()
