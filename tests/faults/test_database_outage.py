"""Database outage for one signing-service replica, simulated with a TCP proxy between the
service and PostgreSQL (the machine's PostgreSQL is shared: it is never restarted).

During the outage every call fails with a clean 503 JSON error (no 500, no hang), a batch of two
documents is never half signed, and the service serves again as soon as the database is back.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import processes
from devstack.scaled import PG_HOST, PG_PORT, drop_database, ensure_database
from tests.faults.conftest import http_json
from tests.faults.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]

CODE = "PC05TK0000123"


class Service:
    def __init__(self, root: Path, proxy: TcpProxy, db: str) -> None:
        self.ports = processes.Ports.free()
        self.outbox = root / "outbox.jsonl"
        self.env = processes.stack_env(
            self.ports,
            {
                "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/{db}",
                "OUTBOX_PATH": str(self.outbox),
                "SIGNING_VAR_DIR": str(root),
            },
        )
        self.proc = processes.signing_service(self.ports, self.env, root / "log")
        self.url = f"http://127.0.0.1:{self.ports.signing}"
        self.auth = {"Authorization": f"Bearer {self.env['SIGNING_SERVICE_TOKEN']}"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        return http_json(method, self.url + path, body, self.auth, timeout=40)

    def statuses(self) -> list[str]:
        status, body = self.call("GET", f"/v1/requests/{CODE}/documents")
        assert status == 200, body
        return [d["status"] for d in body["documents"]]  # type: ignore[index]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Service, TcpProxy]]:
    db = f"cskh_dbfault_{uuid.uuid4().hex[:10]}"
    ensure_database(db)
    proxy = TcpProxy(PG_HOST, PG_PORT).start()
    svc = Service(tmp_path, proxy, db)
    try:
        svc.proc.start()
        svc.proc.wait_healthy(120)
        yield svc, proxy
    finally:
        svc.proc.stop()
        proxy.stop()
        drop_database(db)


def _otp(outbox: Path) -> str:
    last = json.loads(outbox.read_text().splitlines()[-1])
    m = re.search(r"\b(\d{6})\b", last["text"])
    assert m, "no OTP in the outbox message"
    return m.group(1)


def test_database_outage_fails_cleanly_and_never_half_signs(service: tuple[Service, TcpProxy]) -> None:
    svc, proxy = service
    status, docs = svc.call("GET", f"/v1/requests/{CODE}/documents")
    assert status == 200, docs
    ids = [d["id"] for d in docs["documents"] if d["status"] == "awaiting_signature"]  # type: ignore[index]
    assert len(ids) == 2
    status, session = svc.call(
        "POST",
        "/v1/signing-sessions",
        {
            "request_code": CODE,
            "document_ids": ids,
            "channel": "sms",
            "consent": True,
            "chat_channel": "rest",
            "chat_user": "fault-db",
        },
    )
    assert status == 201, session
    otp = _otp(svc.outbox)

    proxy.pause()  # the database "restarts": connections reset, new ones refused
    t0 = time.monotonic()
    outage = [
        svc.call("POST", f"/v1/signing-sessions/{session['session_id']}/verify", {"otp": otp}),  # type: ignore[index]
        svc.call("GET", f"/v1/requests/{CODE}"),
        svc.call("GET", "/v1/units"),
    ]
    slowest = time.monotonic() - t0
    print(
        f"\n[fault] database down: {[s for s, _ in outage]} in {slowest:.1f} s; "
        f"bodies: {[b.get('error') if isinstance(b, dict) else str(b)[:40] for _, b in outage]}"
    )
    for st, body in outage:
        assert st == 503, (st, body)
        assert isinstance(body, dict) and body.get("error") and body.get("message")
    assert slowest < 60

    proxy.resume()
    t1 = time.monotonic()
    while True:
        status, _ = svc.call("GET", "/v1/units")
        if status == 200:
            break
        assert time.monotonic() - t1 < 30, "no recovery within 30 s of the database coming back"
        time.sleep(0.5)
    recovered = time.monotonic() - t1
    after = svc.statuses()
    print(f"[fault] database back: serving again after {recovered:.1f} s; documents {after}")
    assert len(set(after)) == 1, f"half-signed batch: {after}"
    if after[0] != "signed":
        # The failed verify changed nothing; the same code still signs the whole batch.
        status, body = svc.call("POST", f"/v1/signing-sessions/{session['session_id']}/verify", {"otp": otp})  # type: ignore[index]
        assert status == 200, body
    assert svc.statuses() == ["signed", "signed"]
