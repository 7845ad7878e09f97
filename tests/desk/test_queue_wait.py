"""Issue 18, "tôi đợi bao lâu nữa?": the desk tells the action server a waiting customer's place in
the queue and the expected wait (GET /api/queue/position, bearer DESK_API_TOKEN)."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from agent_desk import db, queue_wait
from agent_desk.config import DEV_API_TOKEN, ConfigError, Settings
from agent_desk.keys import DESK
from common.chat_identity import CHAT_USER_HEADER
from tests.desk.conftest import desk_settings, make_agent, queue

AUTH = {"Authorization": f"Bearer {DEV_API_TOKEN}"}


def asks(sender: str) -> dict[str, str]:
    """The action server's request headers (bot/actions/desk_api.py)."""
    return {**AUTH, CHAT_USER_HEADER: quote(sender, safe="")}


def test_the_estimate_follows_the_desks_pace_then_the_recent_waits() -> None:
    # 6 conversations taken in the last hour: one every 10 minutes; third in line, waited 5 minutes.
    assert queue_wait.estimate(3, 300, [60.0] * 6, 6) == 3 * 600 - 300
    # Fewer than 3 taken: the median of their waits, less what was already waited.
    assert queue_wait.estimate(1, 100, [400.0, 200.0], 2) == 200
    # Never below a minute, and no figure without any history.
    assert queue_wait.estimate(1, 5000, [60.0] * 4, 4) == queue_wait.MIN_ESTIMATE
    assert queue_wait.estimate(2, 0, [], 0) is None


async def _claimed_recently(client, waits: list[float]) -> None:
    """Conversations the desk took from the queue in the last hour, each after `wait` seconds."""
    now = time.time()
    async with client.app[DESK].engine.begin() as conn:
        for i, wait in enumerate(waits):
            claimed = now - 60 * (i + 1)
            await conn.execute(
                db.handoffs.insert().values(
                    sender_id=f"old-{i}",
                    channel="zalo",
                    status="closed",
                    requested_at=claimed - wait,
                    queued_at=claimed - wait,
                    claimed_at=claimed,
                    closed_at=claimed + 30,
                    last_messages="[]",
                )
            )


async def test_place_in_the_queue_with_the_expected_wait(desk_factory, tmp_path) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    desk = client.app[DESK]
    first, second, third = "zalo-first", "zalo-second", "zalo-third"
    for sender in (first, second, third):
        await queue(desk, sender)
    lan = await make_agent(desk, "lan")  # available, online
    await _claimed_recently(client, [120.0, 240.0, 180.0, 60.0])  # 4 taken in the hour: one per 15 min

    resp = await client.get("/api/queue/position", headers=asks(second))
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    place = await resp.json()
    assert place["status"] == "waiting"
    assert (place["position"], place["waiting_total"], place["agents_available"]) == (2, 3, 1)
    assert 2 * 900 - 5 <= place["expected_wait_s"] <= 2 * 900
    assert 0 < place["timeout_in_s"] <= 300

    # Once the first is taken (as a claim leaves it; the claim itself is test_assignment's), the
    # second moves up.
    async with desk.engine.begin() as conn:
        await conn.execute(
            db.handoffs.update()
            .where(db.handoffs.c.sender_id == first)
            .values(status="active", agent_id=lan.id, claimed_at=time.time())
        )
    place = await (await client.get("/api/queue/position", headers=asks(second))).json()
    assert (place["position"], place["waiting_total"]) == (1, 2)
    taken = await (await client.get("/api/queue/position", headers=asks(first))).json()
    assert taken["status"] == "active" and taken["position"] is None
    absent = await (await client.get("/api/queue/position", headers=asks("nobody"))).json()
    assert absent == {**absent, "status": "none", "position": None}


async def test_no_history_and_nobody_on_duty_are_said_as_such(desk_factory, tmp_path) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    await queue(client.app[DESK], "zalo-alone")
    place = await (await client.get("/api/queue/position", headers=asks("zalo-alone"))).json()
    assert (place["position"], place["agents_available"], place["expected_wait_s"]) == (1, 0, None)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": DEV_API_TOKEN}, {"Cookie": "x=1"}],
)
async def test_the_api_wants_the_token(desk_factory, tmp_path, headers) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    await queue(client.app[DESK], "zalo-secret")
    resp = await client.get("/api/queue/position", headers={**headers, CHAT_USER_HEADER: "zalo-secret"})
    assert resp.status == 401
    assert "position" not in await resp.json()


@pytest.mark.parametrize("raw", ["", "x" * 256, "%ff%fe"])
async def test_a_bad_sender_is_a_clear_400(desk_factory, tmp_path, raw) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    resp = await client.get("/api/queue/position", headers={**AUTH, CHAT_USER_HEADER: raw})
    assert resp.status == 400
    assert CHAT_USER_HEADER in (await resp.json())["message"]


async def test_the_token_is_set_and_refused_as_default_in_production(tmp_path) -> None:
    settings = desk_settings(tmp_path, env={"DESK_API_TOKEN": "desk-token-1234"})
    assert settings.api_token == "desk-token-1234"
    with pytest.raises(ConfigError, match="DESK_API_TOKEN"):
        Settings.from_env(
            {
                "APP_ENV": "production",
                "DESK_SECRET_KEY": "k" * 32,
                "RASA_AUTH_TOKEN": "r" * 20,
                "SIGNING_SERVICE_TOKEN": "s" * 20,
            }
        )


async def test_sender_ids_are_not_logged(desk_factory, tmp_path, caplog) -> None:
    client = await desk_factory(desk_settings(tmp_path), background=False)
    await queue(client.app[DESK], "zalo-987654321")
    with caplog.at_level("INFO"):
        await client.get("/api/queue/position", headers=asks("zalo-987654321"))
    assert "987654321" not in caplog.text
    async with client.app[DESK].engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(db.handoffs)) == 1
