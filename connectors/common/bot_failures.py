"""Customer messages the bot failed on go to people (issue 18): recorded, the customer told, the desk told.

A message that reached the bot can fail in five ways, all seen inside the Rasa process:

- ``rasa_error``: the turn raised (`on_new_message`: lock store or tracker store down, a bug);
- ``rasa_timeout``: the turn took longer than ``BOT_TURN_TIMEOUT`` seconds (it is not cancelled: a late
  answer still goes out);
- ``circuit_open``: the last ``BOT_CIRCUIT_FAILURES`` turns of the channel failed, so for
  ``BOT_CIRCUIT_OPEN_SECONDS`` messages are not given to the bot at all (no customer waits for a
  timeout on a bot known to be failing); then messages are tried again, and the next failure opens
  it again at once (a success closes it);
- ``action_failed``: an action raised while the processor ran it: the action server is down, slow
  (Rasa's own 5-minute timeout), answered 5xx, or the action itself crashed. Rasa 3.6 logs it and
  carries on without the action's events, so the customer usually gets no answer. `install()` makes
  such a failure end the turn with the canned text (a `bot` event with metadata ``bot_failure``,
  so it is in the transcript) and ``action_listen``;
- ``action_loop``: Rasa's own circuit breaker (more than 10 actions predicted in a row) stopped the turn.

Answers the bot gives on purpose are not failures: ``utter_service_unavailable`` when the signing
service is down is a reply with a way forward (try later, the hotline), and agents could not look
the request up either (docs/agent-desk.md, "Bot failures").

Each failure is one row of the ``bot_failures`` table at ``BOT_FAILURES_URL`` (default: the SQLite
file ``var/bot_failures.db``; in the scaled topology a database the desk reaches too), keyed by
channel + message id: a redelivered message, or a second failure in the same turn, records nothing
new and the customer is told once. The customer gets ``utter_bot_failure`` of the loaded domain when
it has one, else ``BOT_FAILURE_TEXT`` (connectors/common/canned.py). The agent desk tails the table
(agent_desk/bot_failures.py) and queues the conversation flagged "bot lỗi" with the message. If the
table cannot be written, the message goes to the channel failures file (`processing_failed`),
as before: it is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from common.env_numbers import env_number
from connectors.common import canned
from connectors.common.failures import record_failure
from connectors.common.masking import mask_id
from connectors.common.settings import ConfigError, get_float

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = f"sqlite:///{ROOT / 'var' / 'bot_failures.db'}"
MAX_TEXT = 4000
METADATA_KEY = "bot_failure"  # metadata of the canned `bot` event written into the conversation
REASONS = ("rasa_error", "rasa_timeout", "circuit_open", "action_failed", "action_loop")

metadata = sa.MetaData()
failures = sa.Table(
    "bot_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # channel + message id: unique, so a redelivery or a second failure of one turn adds nothing.
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("at", sa.Float, nullable=False),  # epoch seconds
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(200), nullable=False, default=""),
    sa.Column("text", sa.Text, nullable=False, default=""),
)


@dataclass(frozen=True)
class BotFailure:
    key: str
    at: float
    channel: str
    sender_id: str
    reason: str
    detail: str
    text: str

    def row(self) -> dict[str, Any]:
        return {
            "key": self.key[:200],
            "at": self.at,
            "channel": self.channel[:32],
            "sender_id": self.sender_id[:255],
            "reason": self.reason,
            "detail": self.detail[:200],
            "text": self.text[:MAX_TEXT],
        }


def failure_key(channel: str, message_id: object) -> str:
    return f"{channel}:{message_id}"


def store_url(env: dict[str, str] | None = None) -> str:
    return ((env if env is not None else os.environ).get("BOT_FAILURES_URL") or "").strip() or DEFAULT_URL


def make_engine(url: str) -> sa.engine.Engine:
    """A synchronous engine (the Rasa process); SQLite without a pool, so each write opens the file
    in the thread that writes (several Sanic worker processes share it)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, future=True, poolclass=NullPool, connect_args={"timeout": 10})
    return sa.create_engine(url, future=True, pool_pre_ping=True)


def create_table(engine: sa.engine.Engine) -> None:
    """Create the table unless it exists. Several processes (Rasa's workers, the desk) may try at once:
    the loser of that race gets an error from the database, and the table is there."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except sa.exc.DatabaseError:
        if not sa.inspect(engine).has_table(failures.name):
            raise


class FailureStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.engine.Engine | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def engine(self) -> sa.engine.Engine:
        with self._lock:
            if self._engine is None or self._pid != os.getpid():  # never share one across a fork
                engine = make_engine(self.url)
                create_table(engine)
                self._engine, self._pid = engine, os.getpid()
            return self._engine

    def add(self, failure: BotFailure) -> bool:
        """True when recorded, False when this key was already there. Raises when the store fails."""
        try:
            with self.engine().begin() as conn:
                conn.execute(failures.insert().values(**failure.row()))
        except sa.exc.IntegrityError:
            return False
        return True


_stores: dict[str, FailureStore] = {}


def store() -> FailureStore:
    url = store_url()
    if url not in _stores:
        _stores[url] = FailureStore(url)
    return _stores[url]


async def record(failure: BotFailure) -> bool:
    """Record the failure; False only when it was already recorded (the customer was told then).

    A store that cannot be written falls back to the channel failures file: nothing is dropped."""
    try:
        new = await asyncio.to_thread(store().add, failure)
    except Exception as exc:  # the database itself is down: staff still get the message
        logger.error(
            "bot failures store unavailable (%s); message kept in the failures file", type(exc).__name__
        )
        record_failure(
            failure.channel,
            failure.sender_id,
            "processing_failed",
            {"user_text": failure.text, "bot_failure": failure.reason},
            failure.detail[:60] or None,
        )
        return True
    if new:
        logger.warning(
            "%s: the bot failed on a message from %s (%s: %s); recorded for the agent desk",
            failure.channel,
            mask_id(failure.sender_id),
            failure.reason,
            failure.detail,
        )
    return new


# ---------------------------------------------------------------------------------- whole turns
@dataclass(frozen=True)
class TurnSettings:
    timeout: float = 60.0  # 0: no timeout
    circuit_failures: int = 5
    circuit_open_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TurnSettings:
        env = dict(os.environ if env is None else env)
        return cls(
            timeout=get_float(env, "BOT_TURN_TIMEOUT", 60.0, 0),
            circuit_failures=env_number(
                env, "BOT_CIRCUIT_FAILURES", 5, int, ConfigError, lo=1, kind="a whole number"
            ),
            circuit_open_seconds=get_float(env, "BOT_CIRCUIT_OPEN_SECONDS", 60.0, 1),
        )


class Circuit:
    """Consecutive failed turns of one channel; open (no turn tried) for a while after too many."""

    def __init__(
        self, threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.clock = clock
        self.failures = 0
        self.open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self.clock() < self.open_until

    def succeeded(self) -> None:
        if self.failures >= self.threshold:
            logger.warning("the bot answers again: circuit closed")
        self.failures, self.open_until = 0, 0.0

    def failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:  # and again after each trial turn that fails
            self.open_until = self.clock() + self.open_seconds
            logger.error(
                "%d bot turns failed in a row: messages go straight to the agent desk for %.0f s",
                self.failures,
                self.open_seconds,
            )


class BotTurns:
    """Runs the bot on acknowledged messages of one channel; a failed turn goes to people."""

    def __init__(self, channel: str, settings: TurnSettings | None = None) -> None:
        self.channel = channel
        self.settings = settings or TurnSettings.from_env()
        self.circuit = Circuit(self.settings.circuit_failures, self.settings.circuit_open_seconds)
        self._late: set[asyncio.Task[Any]] = set()  # turns that outlived the timeout

    async def run(
        self, on_new_message: Callable[[Any], Awaitable[Any]], message: Any, text: str, app: Any = None
    ) -> None:
        if self.circuit.is_open:
            await self.failed(message, text, "circuit_open", "", app)
            return
        task = asyncio.ensure_future(on_new_message(message))
        timeout = self.settings.timeout or None
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            # Not cancelled (Rasa holds the conversation's lock, and its answer may still be useful).
            self._late.add(task)
            task.add_done_callback(self._late_done)
            self.circuit.failed()
            await self.failed(message, text, "rasa_timeout", f"no answer within {timeout:.0f} s", app)
            return
        exc = task.exception()
        if exc is None:
            self.circuit.succeeded()
            return
        logger.error(
            "%s: the bot failed on a message from %s",
            self.channel,
            mask_id(message.sender_id),
            exc_info=exc,
        )
        self.circuit.failed()
        await self.failed(message, text, "rasa_error", type(exc).__name__, app)

    def _late_done(self, task: asyncio.Task[Any]) -> None:
        self._late.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: a late bot turn failed too: %s", self.channel, type(task.exception()).__name__)

    async def failed(self, message: Any, text: str, reason: str, detail: str, app: Any) -> None:
        """Record the message and tell the customer once (a redelivered message is told nothing)."""
        failure = BotFailure(
            failure_key(self.channel, message.message_id),
            time.time(),
            self.channel,
            message.sender_id,
            reason,
            detail,
            text,
        )
        if not await record(failure):
            logger.info("%s: failure of %s already recorded", self.channel, mask_id(message.sender_id))
            return
        reply = canned.text(app, canned.BOT_FAILURE_RESPONSE, self.channel, canned.BOT_FAILURE_TEXT)
        try:
            # The output channels record a refused reply in the failures file themselves.
            await message.output_channel.send_response(message.sender_id, {"text": reply})
        except Exception:
            logger.exception(
                "%s: could not tell %s about the failure", self.channel, mask_id(message.sender_id)
            )

    async def drain(self) -> None:
        while self._late:
            await asyncio.wait(list(self._late))


_turns: dict[str, BotTurns] = {}


def turns_for(channel: str) -> BotTurns:
    if channel not in _turns:
        _turns[channel] = BotTurns(channel)
    return _turns[channel]


# ------------------------------------------------------------------------- failures inside Rasa
_installed = False


def _canned_text(domain: Any, channel: str) -> str:
    return canned.domain_text(domain, canned.BOT_FAILURE_RESPONSE, channel) or canned.BOT_FAILURE_TEXT


def failure_from_tracker(tracker: Any, reason: str, detail: str) -> BotFailure:
    latest = tracker.latest_message
    channel = tracker.get_latest_input_channel() or "rest"
    message_id = (
        getattr(latest, "message_id", None) or f"{tracker.sender_id}@{getattr(latest, 'timestamp', 0)}"
    )
    text = str(getattr(latest, "text", "") or "")
    return BotFailure(
        failure_key(channel, message_id), time.time(), channel, tracker.sender_id, reason, detail, text
    )


async def failure_events(tracker: Any, domain: Any, reason: str, detail: str) -> list[Any]:
    """What a failed action leaves in the conversation: the canned text (first failure of the
    message only) and `action_listen` (the turn ends; the next message is predicted normally)."""
    from rasa.shared.core.events import BotUttered, FollowupAction

    failure = failure_from_tracker(tracker, reason, detail)
    events: list[Any] = []
    if await record(failure):
        events.append(BotUttered(_canned_text(domain, failure.channel), {}, {METADATA_KEY: reason}))
    events.append(FollowupAction("action_listen"))
    return events


def guard_action(action: Any) -> None:
    """Make `action.run` end the turn politely instead of raising (this action object only)."""
    from rasa.core.actions.action import ActionExecutionRejection

    run = action.run
    if getattr(run, "_bot_failure_guard", False) or action.name() in (
        "action_listen",
        "action_session_start",
    ):
        return

    async def guarded(output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> Any:
        try:
            return await run(output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise  # a form or action refusing the message: normal dialogue, not a failure
        except Exception as exc:
            logger.error("action %s failed: %s", action.name(), type(exc).__name__, exc_info=exc)
            return await failure_events(
                tracker, domain, "action_failed", f"{action.name()}: {type(exc).__name__}"
            )

    guarded._bot_failure_guard = True  # type: ignore[attr-defined]
    action.run = guarded


def on_action_loop(processor: Any) -> Callable[[Any, Any, Any], None]:
    """Rasa's circuit breaker callback, called without await: the canned text goes into the tracker
    at once (the processor saves it next); a task records the failure and sends the text."""
    from rasa.shared.core.events import BotUttered

    def callback(tracker: Any, output_channel: Any, nlg: Any) -> None:
        failure = failure_from_tracker(tracker, "action_loop", "ActionLimitReached")
        event = BotUttered(_canned_text(processor.domain, failure.channel), {}, {METADATA_KEY: "action_loop"})
        tracker.update(event)

        async def tell() -> None:
            if await record(failure) and output_channel is not None:
                await output_channel.send_response(tracker.sender_id, event.message())

        task = asyncio.get_running_loop().create_task(tell())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    return callback


_pending: set[asyncio.Task[None]] = set()
# The Rasa version the guard was written against and Rasa's own methods before install() (a test
# pins their source, so an upgrade that changes them fails until the guard is checked again).
RASA_VERSION = "3.6.21"
ORIGINAL: dict[str, Any] = {}


def stock(name: str) -> Any:
    """Rasa's own MessageProcessor method `name`, whether or not the guard is installed."""
    from rasa.core.processor import MessageProcessor

    return ORIGINAL.get(name) or getattr(MessageProcessor, name)


def install() -> None:
    """Patch Rasa 3.6's processor (idempotent; nothing on another version). Called when Rasa loads
    the channels (connectors/common/webhook.py), so it is in place for every channel, REST included."""
    global _installed
    if _installed:
        return
    import rasa
    from rasa.core.processor import MessageProcessor

    if rasa.__version__ != RASA_VERSION:
        logger.warning(
            "bot failure guard not installed: written for Rasa %s, found %s", RASA_VERSION, rasa.__version__
        )
        return
    original_run_action = MessageProcessor._run_action
    original_init = MessageProcessor.__init__
    ORIGINAL.update(_run_action=original_run_action, __init__=original_init)

    async def _run_action(self: Any, action: Any, *args: Any, **kwargs: Any) -> Any:
        guard_action(action)
        return await original_run_action(self, action, *args, **kwargs)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.on_circuit_break is None:
            self.on_circuit_break = on_action_loop(self)

    MessageProcessor._run_action = _run_action  # type: ignore[method-assign]
    MessageProcessor.__init__ = __init__  # type: ignore[method-assign]
    _installed = True


async def hand_to_bot(
    on_new_message: Callable[[Any], Awaitable[Any]],
    message: Any,
    channel: str,
    text: str,
    app: Any = None,
    turns: BotTurns | None = None,
) -> None:
    """Run the bot on an already acknowledged message. The platform will not redeliver it, so if
    the turn fails or hangs, the message goes to the agent desk and the customer is told
    (connectors/common/bot_failures.py); `app` is Rasa's Sanic app (the domain's canned text),
    `turns` the channel's own runner (its circuit breaker)."""
    await (turns or turns_for(channel)).run(on_new_message, message, text, app)
