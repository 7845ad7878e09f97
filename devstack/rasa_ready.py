"""When is the assistant ready: the first answer to a message through Rasa's REST channel.

Rasa's `/` answers as soon as one Sanic worker listens; a customer is served only when a message
gets the bot's reply, so `make run` and bench/bench_startup.py time that instead.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

PROBE_SENDER = "devstack-ready-probe"
PROBE_TEXT = "xin chào"


def answers(rest_url: str, env: Mapping[str, str], sender: str = PROBE_SENDER, timeout: float = 30) -> bool:
    """True when one message through the REST channel is answered (HTTP 200 and a list: the message
    went through the NLU and the policies; the assistant's greeting makes the list non-empty)."""
    headers = {"Content-Type": "application/json"}
    token = env.get("REST_CHANNEL_TOKEN", "").strip()
    if token:  # deploy/rest_guard.py refuses the channel without it
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"sender": sender, "message": PROBE_TEXT}).encode()
    request = urllib.request.Request(rest_url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        # rest_url is http://<client host>:<Rasa port>/webhooks/rest/webhook, built by the caller
        with urllib.request.urlopen(request, timeout=timeout) as r:  # noqa: S310
            reply = json.loads(r.read() or b"null")
            return r.status == 200 and isinstance(reply, list)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_for_answer(
    rest_url: str,
    env: Mapping[str, str],
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    every_s: float = 0.25,
    sender: str = PROBE_SENDER,
) -> float | None:
    """Seconds until the REST channel first answers (from this call), or None on timeout or when
    `alive()` turns false (the Rasa process exited)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout and alive():
        if answers(rest_url, env, sender):
            return time.monotonic() - started
        time.sleep(every_s)
    return None
