"""`make review` on what the real Rasa server wrote through its SQL event broker (endpoints.yml)."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
import requests

from trainer import review, settings

pytestmark = pytest.mark.e2e


def say(url: str, sender: str, text: str) -> list[dict]:
    resp = requests.post(f"{url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60)
    resp.raise_for_status()
    return resp.json()


def test_review_exports_what_the_bot_did_not_understand(rasa_stack, sender_id: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    nonsense = "xyzzy qwrtp blorf"  # no Vietnamese word, no feature the model knows
    say(rasa_stack.rasa_url, sender_id, "xin chào")
    say(rasa_stack.rasa_url, sender_id, nonsense)
    db = rasa_stack.env["RASA_EVENTS_DB"]
    out = tmp_path / "review.csv"
    s = settings.load()  # the real NLU data: messages already in it are left out
    deadline = time.monotonic() + 30
    rows: list[dict[str, str]] = []
    while time.monotonic() < deadline:  # the broker writes after the reply; give it a moment
        review.export_review(s, out, db=db)
        rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
        if any(r["conversation"] == sender_id for r in rows):
            break
        time.sleep(1)
    mine = [r for r in rows if r["conversation"] == sender_id]
    assert [r["text"] for r in mine] == [nonsense]
    assert "nlu_fallback" in mine[0]["reason"] or "low_confidence" in mine[0]["reason"]
    assert float(mine[0]["confidence"]) < 1.0 and mine[0]["label"] == ""
