"""The replayable journey suite (tests/journeys/*.yml) over the real Rasa server: customers written
apart from the training data, each with a goal in the bot's own words. The rate is the figure the
issue asks for; the floor below is what the suite reached when it landed, so a regression fails."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Stack
from tests.journeys.replay import HERE, load, replay, summary

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# 44/45 against `make run` when issue 15 landed; other tests share this stack's demo requests.
FLOOR = 0.9


async def test_journeys_reach_their_goal(rasa_stack: Stack, tmp_path) -> None:
    journeys = load(sorted(HERE.glob("*.yml")))
    assert len(journeys) >= 40
    results = await replay(rasa_stack.rasa_url, journeys, rasa_stack.root / "signing.db", rasa_stack.outbox)
    (tmp_path / "journeys.json").write_text(
        json.dumps([r.__dict__ for r in results], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(summary(results))
    rate = sum(r.ok for r in results) / len(results)
    assert rate >= FLOOR, summary(results)
    assert not any("chưa xử lý được yêu cầu này" in r.reason for r in results)
