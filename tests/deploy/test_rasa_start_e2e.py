"""A real Rasa started as devstack starts it (`python -m deploy.rasa_main run`, credentials.yml): the
patches are installed and the REST channel is the guarded one, still called "rest"."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.e2e


async def test_rasa_starts_with_its_patches_and_the_guarded_rest_channel(
    rasa_stack: Stack, sender_id: str
) -> None:
    proc = rasa_stack.procs["rasa"]
    assert proc.cmd[1:4] == ["-m", "deploy.rasa_main", "run"]
    assert proc.log_path is not None
    log = proc.log_path.read_text(encoding="utf-8", errors="replace")
    assert "patches installed, 0 refused" in log and "WARNING: not the Rasa" not in log

    webhook = f"{rasa_stack.rasa_url}/webhooks/rest/webhook"
    forged = {
        "sender": sender_id,
        "message": "xin chào",
        "metadata": {"shared_contact": {"phone": "+84905123456"}},
        "input_channel": "telegram",
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async with session.post(webhook, json=forged) as r:
            assert r.status == 200 and await r.json(), await r.text()
        async with session.post(webhook, json={"sender": "zalo:6142", "message": "xin chào"}) as r:
            assert r.status == 403
        async with session.post(webhook, json=[]) as r:
            assert r.status == 400
        tracker_url = f"{rasa_stack.rasa_url}/conversations/{sender_id}/tracker"
        async with session.get(tracker_url, params={"token": rasa_stack.rasa_token}) as r:
            tracker = await r.json()
    assert tracker["latest_input_channel"] == "rest"
    [user] = [e for e in tracker["events"] if e["event"] == "user"]
    assert user["input_channel"] == "rest"
    assert "shared_contact" not in (user.get("metadata") or {})  # Rasa adds its model's ids only
