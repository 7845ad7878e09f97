"""Bot failures go to people (issue 18), at the connectors: a failed, slow or circuit-broken turn and a
failed action are recorded once in the bot failures store and the customer gets the canned text once.

The webhook tests run the real channel blueprints (Sanic) against the fake platforms with a stand-in
for Rasa's handler that fails; the action tests run Rasa 3.6's own `MessageProcessor._run_action`
(patched by `install()`) on a real tracker.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from connectors.common import bot_failures
from connectors.common.canned import BOT_FAILURE_TEXT
from connectors.telegram.config import TelegramSettings
from connectors.zalo.channel import ZaloInput
from connectors.zalo.config import ZaloSettings
from tests.connectors.conftest import ZALO_APP_ID, ZALO_OA_SECRET
from tests.connectors.fakes import FakeTelegramApi, FakeZaloApi
from tests.connectors.harness import Recorder, serve
from tests.connectors.test_telegram import channel as telegram_channel
from tests.connectors.test_telegram import post as tg_post
from tests.connectors.test_zalo_webhook import post as zalo_post
from tests.connectors.tg_helpers import text_update
from tests.connectors.zalo_helpers import event, signed

ZALO_USER = "6142000000123"
CHAT = 700000123


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'bot_failures.db'}"
    monkeypatch.setenv("BOT_FAILURES_URL", url)
    return url


def stored(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url, future=True)
    bot_failures.create_table(engine)  # nothing recorded yet: an empty table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(bot_failures.failures).order_by(bot_failures.failures.c.id)).all()
    engine.dispose()
    return [dict(r._mapping) for r in rows]


class FailingBot(Recorder):
    """Rasa's handler when the lock store (or anything under the turn) is down (until `fail` is False)."""

    fail = True

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)
        if self.fail:
            raise ConnectionError("lock store unreachable")


def exists(path: Path) -> bool:
    return path.exists()


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_zalo_turn_that_raises_is_recorded_and_the_customer_told_once(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, store_url: str, failures_file: Path
) -> None:
    bot = FailingBot()
    body = event("user_send_text", user_id=ZALO_USER, text="tôi cần ký hợp đồng", msg_id="m-fail-1")
    async with serve(ZaloInput(zalo_settings), bot) as url:
        assert (await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "accepted"
        await bot.wait_for(1)
        await wait_until(lambda: fake_zalo.texts_to(ZALO_USER))
        # Zalo redelivers (no acknowledgement seen): dropped, nothing recorded or said twice.
        assert (await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "duplicate"
    # After a restart the in-memory dedupe is empty: the turn runs again, but the store knows the message.
    async with serve(ZaloInput(zalo_settings), bot) as url:
        assert (await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET)))[1]["status"] == "accepted"
        await bot.wait_for(2)
    [row] = stored(store_url)
    assert (row["key"], row["channel"], row["sender_id"]) == ("zalo:m-fail-1", "zalo", f"zalo:{ZALO_USER}")
    assert (row["reason"], row["detail"], row["text"]) == (
        "rasa_error",
        "ConnectionError",
        "tôi cần ký hợp đồng",
    )
    assert fake_zalo.texts_to(ZALO_USER) == [BOT_FAILURE_TEXT]
    assert not exists(failures_file)  # the store has it: not the undelivered-replies file


async def test_the_domain_text_is_used_when_the_model_has_one(
    zalo_settings: ZaloSettings, fake_zalo: FakeZaloApi, store_url: str
) -> None:
    domain = Domain.from_dict(
        {"responses": {"utter_bot_failure": [{"text": "Nhân viên sẽ trả lời anh/chị ạ."}]}}
    )
    bot = FailingBot()
    async with serve(ZaloInput(zalo_settings), bot, {"agent": SimpleNamespace(domain=domain)}) as url:
        body = event("user_send_text", user_id=ZALO_USER, text="alo")
        await zalo_post(url, *signed(body, ZALO_APP_ID, ZALO_OA_SECRET))
        await wait_until(lambda: fake_zalo.texts_to(ZALO_USER))
    assert fake_zalo.texts_to(ZALO_USER) == ["Nhân viên sẽ trả lời anh/chị ạ."]


async def test_telegram_turn_that_hangs_is_recorded_and_its_late_answer_still_goes(
    telegram_settings: TelegramSettings,
    fake_telegram: FakeTelegramApi,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_TURN_TIMEOUT", "0.3")
    slow = Recorder(reply={"text": "Câu trả lời muộn"}, delay=1.0)
    tg = telegram_channel(telegram_settings)
    async with serve(tg, slow) as url:
        update = text_update(CHAT, "tra cứu PC05TK0000123")
        assert (await tg_post(url, update))[1]["status"] == "accepted"
        await wait_until(lambda: fake_telegram.texts_to(CHAT))
        assert fake_telegram.texts_to(CHAT) == [BOT_FAILURE_TEXT]
        await slow.wait_for(1)
        await tg.turns.drain()
        await wait_until(lambda: len(fake_telegram.texts_to(CHAT)) == 2)
    assert fake_telegram.texts_to(CHAT)[1] == "Câu trả lời muộn"
    [row] = stored(store_url)
    assert (row["key"], row["reason"], row["text"]) == (
        f"telegram:{update['update_id']}",
        "rasa_timeout",
        "tra cứu PC05TK0000123",
    )


async def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_turn(
    telegram_settings: TelegramSettings,
    fake_telegram: FakeTelegramApi,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_CIRCUIT_FAILURES", "2")
    monkeypatch.setenv("BOT_CIRCUIT_OPEN_SECONDS", "60")
    bot = FailingBot()
    tg = telegram_channel(telegram_settings)
    async with serve(tg, bot) as url:
        for n in range(3):
            await tg_post(url, text_update(CHAT, f"tin {n}"))
        await wait_until(lambda: len(stored(store_url)) == 3)
        assert len(bot.messages) == 2  # the third never reached the failing bot
        assert [r["reason"] for r in stored(store_url)] == ["rasa_error", "rasa_error", "circuit_open"]
        await wait_until(lambda: len(fake_telegram.texts_to(CHAT)) == 3)
        assert fake_telegram.texts_to(CHAT) == [BOT_FAILURE_TEXT] * 3
        tg.turns.circuit.open_until = 0.0  # the open period is over: the next message is tried
        bot.fail = False
        await tg_post(url, text_update(CHAT, "tin 3"))
        await bot.wait_for(3)
        await tg.runner.drain()
    assert tg.turns.circuit.failures == 0 and not tg.turns.circuit.is_open
    assert len(stored(store_url)) == 3


async def test_an_unwritable_store_falls_back_to_the_failures_file(
    zalo_settings: ZaloSettings,
    fake_zalo: FakeZaloApi,
    failures_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("BOT_FAILURES_URL", f"sqlite:///{blocker / 'bot_failures.db'}")
    bot = FailingBot()
    async with serve(ZaloInput(zalo_settings), bot) as url:
        await zalo_post(
            url, *signed(event("user_send_text", user_id=ZALO_USER, text="cứu"), ZALO_APP_ID, ZALO_OA_SECRET)
        )
        await wait_until(lambda: fake_zalo.texts_to(ZALO_USER))
    [record] = read_lines(failures_file)
    assert record["reason"] == "processing_failed"
    assert record["message"] == {"user_text": "cứu", "bot_failure": "rasa_error"}


# ------------------------------------------------------------------ actions failing inside Rasa
DOMAIN = Domain.from_dict({"intents": ["greet"], "actions": ["action_lookup"]})


class BrokenAction(RemoteAction):
    """A custom action that raises `exc` (RemoteAction raises RasaException when its server fails)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__("action_lookup", None)
        self.exc = exc

    async def run(self, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list[Any]:
        raise self.exc


def tracker_with_message(
    sender: str, text: str, message_id: str, channel: str = "zalo"
) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    tracker.update(ActionExecuted("action_listen"))
    tracker.update(
        UserUttered(text, {"name": "greet", "confidence": 1.0}, message_id=message_id, input_channel=channel)
    )
    return tracker


async def run_action(action: Any, tracker: DialogueStateTracker, output: CollectingOutputChannel) -> bool:
    from rasa.core.policies.policy import PolicyPrediction

    processor = MessageProcessor.__new__(MessageProcessor)  # what _run_action uses of it: the domain
    processor.domain = DOMAIN
    prediction = PolicyPrediction.for_action_name(DOMAIN, "action_lookup")
    return await MessageProcessor._run_action(processor, action, tracker, output, None, prediction)


async def test_a_failing_action_ends_the_turn_with_the_canned_text_once(store_url: str) -> None:
    bot_failures.install()
    bot_failures.install()  # idempotent
    tracker = tracker_with_message("zalo:6142000000555", "xem hồ sơ PC05TK0000123", "m-act-1")
    output = CollectingOutputChannel()
    # Rasa's own RemoteAction, its action server down (nothing listens on port 9).
    action = RemoteAction("action_lookup", EndpointConfig("http://127.0.0.1:9/webhook"))
    assert await run_action(action, tracker, output) is True
    bots = [e for e in tracker.events if isinstance(e, BotUttered)]
    assert [(b.text, b.metadata) for b in bots] == [(BOT_FAILURE_TEXT, {"bot_failure": "action_failed"})]
    assert tracker.followup_action == "action_listen"  # the turn ends here
    assert [m["text"] for m in output.messages] == [BOT_FAILURE_TEXT]
    [row] = stored(store_url)
    assert (row["key"], row["reason"], row["text"]) == (
        "zalo:m-act-1",
        "action_failed",
        "xem hồ sơ PC05TK0000123",
    )
    assert row["detail"] == "action_lookup: RasaException"

    # The same message fails again (a redelivery after a restart): recorded once, said once.
    again = tracker_with_message("zalo:6142000000555", "xem hồ sơ PC05TK0000123", "m-act-1")
    output2 = CollectingOutputChannel()
    await run_action(BrokenAction(asyncio.TimeoutError()), again, output2)
    assert output2.messages == [] and again.followup_action == "action_listen"
    assert len(stored(store_url)) == 1


async def test_a_rejection_is_dialogue_not_a_failure(store_url: str) -> None:
    from rasa.core.actions.action import ActionExecutionRejection

    bot_failures.install()
    tracker = tracker_with_message("telegram:700000555", "abc", "m-rej-1", "telegram")
    await run_action(
        BrokenAction(ActionExecutionRejection("action_lookup")), tracker, CollectingOutputChannel()
    )
    assert stored(store_url) == []
    assert not [e for e in tracker.events if isinstance(e, BotUttered)]


async def test_rasas_circuit_breaker_is_a_failure_too(store_url: str) -> None:
    tracker = tracker_with_message("rest-visitor", "vòng lặp", "m-loop-1", "rest")
    output = CollectingOutputChannel()
    callback = bot_failures.on_action_loop(SimpleNamespace(domain=DOMAIN))
    callback(tracker, output, None)
    [bot] = [e for e in tracker.events if isinstance(e, BotUttered)]  # written before the tracker is saved
    assert bot.metadata == {"bot_failure": "action_loop"}
    await asyncio.gather(*bot_failures._pending)
    assert [m["text"] for m in output.messages] == [BOT_FAILURE_TEXT]
    assert [(r["key"], r["reason"]) for r in stored(store_url)] == [("rest:m-loop-1", "action_loop")]


# Source of the Rasa 3.6.21 code the guard wraps. A Rasa upgrade that changes any of it fails here
# until the guard (connectors/common/bot_failures.py) is checked against the new code.
PATCHED_RASA_CODE = {
    "MessageProcessor._run_action": "6d383d0179ef1187639887289168959a5a82f94e6949e4e27bb83b2165094995",
    "MessageProcessor.__init__": "e7cdae90996508bf7ce35caf1749d34126d4b86070e5f8840c1faf563797db49",
    "RemoteAction.run": "ccabf6f1160d527a157fad5bd285ce69e8221b1bcad23f8a61499b4360a1c17e",
}


def test_the_guard_is_written_for_the_installed_rasa_code() -> None:
    import hashlib
    import inspect

    import rasa
    from rasa.core.actions.action import RemoteAction

    from connectors.common import bot_failures

    assert rasa.__version__ == bot_failures.RASA_VERSION
    found = {
        "MessageProcessor._run_action": bot_failures.stock("_run_action"),
        "MessageProcessor.__init__": bot_failures.stock("__init__"),
        "RemoteAction.run": RemoteAction.run,
    }
    digests = {k: hashlib.sha256(inspect.getsource(f).encode()).hexdigest() for k, f in found.items()}
    assert digests == PATCHED_RASA_CODE


def test_the_canned_text_is_the_domains_text() -> None:
    """Used when Rasa cannot give its domain's text: the same words either way."""
    import yaml

    from connectors.common.canned import BOT_FAILURE_RESPONSE, BOT_FAILURE_TEXT
    from devstack.processes import ROOT

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert domain["responses"][BOT_FAILURE_RESPONSE][0]["text"] == BOT_FAILURE_TEXT
