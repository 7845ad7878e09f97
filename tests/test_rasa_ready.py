"""`make run`'s readiness check (devstack/rasa_ready.py) and the benchmark's memory sums."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import process_memory
from devstack import rasa_ready


class FakeRest(BaseHTTPRequestHandler):
    status = 200
    reply: object = [{"recipient_id": "x", "text": "Chào anh/chị"}]
    seen: list[tuple[str | None, dict[str, object]]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeRest.seen.append((self.headers.get("Authorization"), body))
        data = json.dumps(FakeRest.reply).encode()
        self.send_response(FakeRest.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rest_url() -> Iterator[str]:
    FakeRest.status, FakeRest.reply, FakeRest.seen = 200, [{"text": "Chào anh/chị"}], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/rest/webhook"
    server.shutdown()
    server.server_close()


def test_an_answered_message_means_ready_and_the_channel_token_is_sent(rest_url: str) -> None:
    assert rasa_ready.answers(rest_url, {"REST_CHANNEL_TOKEN": "t0k"})
    auth, body = FakeRest.seen[-1]
    assert auth == "Bearer t0k"
    assert body == {"sender": rasa_ready.PROBE_SENDER, "message": rasa_ready.PROBE_TEXT}
    assert rasa_ready.answers(rest_url, {})
    assert FakeRest.seen[-1][0] is None


@pytest.mark.parametrize(("status", "reply"), [(500, {"error": "x"}), (200, {"not": "a list"})])
def test_an_error_or_a_reply_that_is_not_a_list_is_not_ready(
    rest_url: str, status: int, reply: object
) -> None:
    FakeRest.status, FakeRest.reply = status, reply
    assert not rasa_ready.answers(rest_url, {})


def test_waiting_stops_when_rasa_exits_and_times_an_answer(rest_url: str) -> None:
    closed = "http://127.0.0.1:9/webhooks/rest/webhook"  # discard port: nothing listens
    assert rasa_ready.wait_for_answer(closed, {}, timeout=5, alive=lambda: False) is None
    took = rasa_ready.wait_for_answer(rest_url, {}, timeout=5)
    assert took is not None and 0 <= took < 5


def test_memory_of_a_process_tree_counts_this_process() -> None:
    mem = process_memory.tree_memory([os.getpid()])
    assert mem.rss_mb > 1
    if mem.pss_mb is not None:  # smaps_rollup present (Linux 4.14+)
        assert 0 < mem.pss_mb <= mem.rss_mb * 1.01
    assert os.getpid() in process_memory.process_tree([os.getpid()])
