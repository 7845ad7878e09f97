"""Process-wide counters an operator can alert on (GET /metrics, Prometheus text format).

Counted per process: with several replicas, sum them. Names are fixed here so the dashboard and
the code agree.
"""

from __future__ import annotations

import threading
from collections import Counter

NAMES = {
    "otp_sessions_started_total": "OTP sessions started (verification and signing)",
    "otp_sends_refused_total": "OTP sessions or resends refused by a cap, a cooldown or a freeze",
    "otp_send_failures_total": "OTP messages the SMS or e-mail gateway did not accept",
    "otp_wrong_codes_total": "Wrong OTP codes typed",
    "otp_requests_frozen_total": "Requests whose OTPs were frozen after too many wrong codes",
    "verifications_total": "Chat users verified for a request",
    "verification_refused_total": "Shared contacts refused as verification",
    "not_verified_refusals_total": "Documents, contacts, amendments or signing refused: not verified",
    "lookups_refused_total": "Code or name lookups refused by a rate limit",
}


class Counters:
    def __init__(self) -> None:
        self._values: Counter[str] = Counter()
        self._lock = threading.Lock()

    def inc(self, name: str, by: int = 1) -> None:
        if name not in NAMES:
            raise KeyError(name)
        with self._lock:
            self._values[name] += by

    def get(self, name: str) -> int:
        return self._values[name]

    def exposition(self) -> str:
        lines = []
        for name, help_text in NAMES.items():
            lines += [f"# HELP cskh_{name} {help_text}", f"# TYPE cskh_{name} counter"]
            lines.append(f"cskh_{name} {self._values[name]}")
        return "\n".join(lines) + "\n"


COUNTERS = Counters()
