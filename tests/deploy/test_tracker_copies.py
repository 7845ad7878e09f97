"""deploy/tracker_copies.py copies a tracker (and builds a form's temporary tracker) from its state
instead of replaying its events: every attribute of the copy must be what Rasa's replay gives, on
the conversations of the project's stories and rules, on random event sequences (with the events
that must take Rasa's path), and the copy must be independent of its original."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rasa.core.actions.forms import FormAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    DefinePrevUserUtteredFeaturization,
    EntitiesAdded,
    Event,
    FollowupAction,
    LoopInterrupted,
    ReminderScheduled,
    Restarted,
    SessionStarted,
    SlotSet,
    StoryExported,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.slots import TextSlot
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader

from deploy import rasa_patches, rasa_speedups, tracker_copies
from deploy.source_pins import original

ROOT = Path(__file__).resolve().parents[2]
LISTEN = "action_listen"
KINDS = tracker_copies.event_kinds()


@pytest.fixture(scope="module")
def domain() -> Domain:
    assert rasa_patches.install((*rasa_speedups.PATCHES, *tracker_copies.PATCHES)) == []
    assert original(DialogueStateTracker.copy) is not DialogueStateTracker.copy
    return Domain.load(str(ROOT / "domain.yml"))


def replay_copy(tracker: DialogueStateTracker) -> DialogueStateTracker:
    return original(DialogueStateTracker.copy)(tracker)  # type: ignore[no-any-return]


def replay_temporary(
    form: FormAction, tracker: DialogueStateTracker, extra: list[Event], domain: Domain
) -> Any:
    return original(FormAction._temporary_tracker)(form, tracker, extra, domain)


def assert_same(
    got: DialogueStateTracker, want: DialogueStateTracker, source: DialogueStateTracker, form: bool = False
) -> None:
    """`got` has every attribute `want` has, equal, sharing what a replay shares with `source` (the
    event objects, the latest message and bot utterance) and nothing that Rasa changes in place."""
    assert type(got) is type(want) is DialogueStateTracker
    assert set(vars(got)) == set(vars(want)), set(vars(got)) ^ set(vars(want))
    assert [{**e.as_dict(), "timestamp": 0} for e in got.events] == [
        {**e.as_dict(), "timestamp": 0} for e in want.events
    ]
    # The source's events (after its latest restart, for a form) are the same objects in both; a
    # form's temporary tracker adds new ones of its own.
    shared = source.events_after_latest_restart() if form else list(source.events)
    n = len(shared)
    assert all(
        a is b is c for a, b, c in zip(list(got.events)[:n], list(want.events)[:n], shared, strict=True)
    )
    assert got.events.maxlen == want.events.maxlen and got.events is not source.events
    assert got.slots.keys() == want.slots.keys()
    for name, slot in got.slots.items():
        assert type(slot) is type(want.slots[name]) and vars(slot) == vars(want.slots[name]), name
        assert slot is not source.slots.get(name), name
    for attribute in ("latest_message", "latest_bot_utterance"):
        mine, theirs = getattr(got, attribute), getattr(want, attribute)
        if any(theirs is e for e in want.events):
            assert mine is theirs, attribute  # the event itself, as a replay sets it
        else:  # the empty one of a reset: a new one, as a replay makes
            assert mine is not getattr(source, attribute), attribute
            assert {**mine.as_dict(), "timestamp": 0} == {**theirs.as_dict(), "timestamp": 0}, attribute
    assert got.active_loop == want.active_loop
    assert got.active_loop is None or got.active_loop is not source.active_loop
    assert got.latest_action == want.latest_action
    assert got.latest_action is None or got.latest_action is not source.latest_action
    simple = set(vars(want)) - {"events", "slots", "latest_message", "latest_bot_utterance", "active_loop"}
    assert {k: vars(got)[k] for k in simple} == {k: vars(want)[k] for k in simple}
    # (A form's own events are new in each tracker: their timestamps differ, as events' do.)
    mine, theirs = got.current_state(EventVerbosity.NONE), want.current_state(EventVerbosity.NONE)
    assert mine.pop("latest_event_time") == theirs.pop("latest_event_time") or len(got.events) > n
    assert mine == theirs


def conversation(steps: list[Event]) -> list[Event]:
    """A story's or rule's steps as a conversation's events: a session start, action_listen before
    each user message, and a bot utterance after each action but the forms (they ask with their own)."""
    events: list[Event] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted(LISTEN)]
    for step in steps:
        if isinstance(step, ActionExecuted) and not step.action_name:
            continue  # a rule's snippet marker
        if isinstance(step, UserUttered) and not (
            isinstance(events[-1], ActionExecuted) and events[-1].action_name == LISTEN
        ):
            events.append(ActionExecuted(LISTEN))
        events.append(step)
        name = step.action_name if isinstance(step, ActionExecuted) else None
        if name and name != LISTEN and not name.endswith("_form"):
            events.append(
                BotUttered(f"text of {step.action_name}", metadata={"utter_action": step.action_name})
            )
    return events


def project_conversations(domain: Domain) -> Iterator[tuple[str, list[Event]]]:
    reader = YAMLStoryReader(domain)
    for folder in ("stories", "rules"):
        for path in sorted((ROOT / "bot" / "data" / folder).glob("*.yml")):
            for step in reader.read_from_file(str(path)):
                yield f"{path.name}: {step.block_name}", conversation(list(step.events))


def every_prefix(events: list[Event], domain: Domain, max_history: int | None = None) -> Iterator[Any]:
    tracker = DialogueStateTracker("sender", domain.slots, max_history)
    for event in events:
        tracker.update(event)
        yield tracker


def test_copies_of_the_project_conversations_are_the_replayed_ones(domain: Domain) -> None:
    compared = fast = 0
    names = set()
    for name, events in project_conversations(domain):
        names.add(name)
        for tracker in every_prefix(events, domain):
            got, want = tracker.copy(), replay_copy(tracker)
            assert_same(got, want, tracker)
            compared += 1
            fast += tracker_copies._copy_state(tracker, KINDS, None) is not None
    assert len(names) >= 20 and compared >= 500, (len(names), compared)
    assert fast >= compared // 2, (fast, compared)  # most copies take the state, not the replay
    print(f"\n[tracker copies] {compared} copies of {len(names)} conversations, {fast} without replay")


def test_a_forms_temporary_tracker_is_the_replayed_one(domain: Domain) -> None:
    compared = 0
    for _name, events in project_conversations(domain):
        for tracker in every_prefix(events, domain, max_history=len(events) // 2 or None):
            for form_name in domain.form_names:
                form = FormAction(form_name, None)
                extra: list[Event] = [SlotSet("requested_slot", "x"), BotUttered("hỏi lại")]
                got = form._temporary_tracker(tracker, list(extra), domain)
                assert_same(got, replay_temporary(form, tracker, list(extra), domain), tracker, form=True)
                compared += 1
        if compared > 3000:
            break
    assert compared >= 500, compared


def test_a_tracker_with_slots_of_another_domain_is_replayed(domain: Domain) -> None:
    events = conversation([UserUttered("hi", {"name": "greet"}), ActionExecuted("utter_greet")])
    other = Domain.from_dict(
        {"slots": {"verify_channel": {"type": "text", "mappings": [{"type": "custom"}]}}}
    )
    tracker = DialogueStateTracker.from_events("s", events, other.slots)
    form = FormAction("verification_form", None)
    got = form._temporary_tracker(tracker, [], domain)
    assert_same(got, replay_temporary(form, tracker, [], domain), tracker, form=True)
    assert set(got.slots) == {s.name for s in domain.slots}  # the domain's, as from_events makes them


def random_event(rng: random.Random, domain: Domain, tmp: Path) -> Event:
    slot = rng.choice(domain.slots).name
    action = rng.choice([LISTEN, "utter_greet", "action_find_request", *domain.form_names])
    choices: list[Any] = [
        lambda: UserUttered(rng.choice(["chào", "mã PC05TK0000123"]), {"name": "greet"}, [{"entity": "x"}]),
        lambda: BotUttered("dạ", metadata={"utter_action": "utter_greet"}),
        lambda: SlotSet(slot, rng.choice([None, "sms", True, 1.0, ["a"], {"k": 1}])),
        lambda: ActionExecuted(action),
        lambda: ActionExecuted(LISTEN),
        lambda: ActiveLoop(rng.choice([None, *domain.form_names])),
        lambda: LoopInterrupted(rng.random() < 0.5),
        lambda: ActionExecutionRejected(rng.choice(domain.form_names)),
        lambda: FollowupAction("action_show_documents"),
        lambda: DefinePrevUserUtteredFeaturization(rng.random() < 0.5),
        lambda: EntitiesAdded([{"entity": "power_unit", "value": "Tam Kỳ"}]),
        lambda: ConversationPaused(),
        lambda: ConversationResumed(),
        lambda: SessionStarted(),
        lambda: Restarted(),
        lambda: AllSlotsReset(),
        # Not state-only: their trackers take Rasa's replay.
        lambda: UserUtteranceReverted(),
        lambda: ActionReverted(),
        lambda: ReminderScheduled("EXTERNAL_reminder", datetime.now()),
        lambda: StoryExported(str(tmp / "exported.yml")),
    ]
    weights = [6, 5, 8, 8, 6, 3, 2, 2, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0.2]
    return rng.choices(choices, weights)[0]()  # type: ignore[no-any-return]


def test_random_event_sequences_copy_as_replayed(domain: Domain, tmp_path: Path) -> None:
    rng = random.Random(20261207)
    compared = fast = 0
    for _ in range(150):
        events = [random_event(rng, domain, tmp_path) for _ in range(rng.randint(1, 40))]
        for tracker in every_prefix(events, domain, max_history=rng.choice([None, None, 15])):
            got, want = tracker.copy(), replay_copy(tracker)
            assert_same(got, want, tracker)
            form = FormAction(rng.choice(domain.form_names), None)
            extra: list[Event] = [SlotSet("requested_slot", None)]
            assert_same(
                form._temporary_tracker(tracker, list(extra), domain),
                replay_temporary(form, tracker, list(extra), domain),
                tracker,
                form=True,
            )
            compared += 1
            fast += tracker_copies._copy_state(tracker, KINDS, None) is not None
    assert compared > 2000 and 0 < fast < compared, (compared, fast)


def test_the_copy_is_independent_of_its_original(domain: Domain) -> None:
    events = conversation(
        [
            UserUttered("xem tài liệu", {"name": "view_documents"}),
            ActionExecuted("verification_form"),
            ActiveLoop("verification_form"),
            SlotSet("requested_slot", "verify_channel"),
            ActionExecuted("utter_ask_verify_channel"),
            UserUttered("cảm ơn", {"name": "thank"}),
        ]
    )
    tracker = DialogueStateTracker.from_events("s", events, domain.slots)
    assert tracker_copies._copy_state(tracker, KINDS, None) is not None
    copy = tracker.copy()
    copy.update(ActionExecutionRejected("verification_form"))  # Rasa marks the loop in place
    copy.update(SlotSet("verify_channel", "sms"))
    copy.update(ActionExecuted("utter_you_are_welcome"))
    assert copy.active_loop is not None and copy.active_loop.rejected
    assert tracker.active_loop is not None and not tracker.active_loop.rejected
    assert tracker.get_slot("verify_channel") is None and copy.get_slot("verify_channel") == "sms"
    assert len(tracker.events) == len(events) and tracker.latest_action_name == LISTEN
    assert copy.latest_action_name == "utter_you_are_welcome"


class _OwnCopy(TextSlot):
    copies = 0

    def __copy__(self) -> _OwnCopy:
        type(self).copies += 1
        new = _OwnCopy(self.name, self.mappings)
        new.__dict__.update(self.__dict__)
        return new


def test_a_slot_class_that_copies_itself_is_copied_its_way(domain: Domain) -> None:
    events = conversation([UserUttered("chào", {"name": "greet"}), ActionExecuted("utter_greet")])
    slots = [*domain.slots, _OwnCopy("own", mappings=[{"type": "custom"}])]
    tracker = DialogueStateTracker.from_events("s", [*events, SlotSet("own", "x")], slots)
    before = _OwnCopy.copies
    got = tracker.copy()
    assert _OwnCopy.copies == before + 1 and type(got.slots["own"]) is _OwnCopy
    assert_same(got, replay_copy(tracker), tracker)


def test_a_tracker_recreated_from_its_dialogue_is_copied_as_rasa_copies_it(domain: Domain) -> None:
    """Rasa's in-memory, Redis and Mongo stores load a tracker with `recreate_from_dialogue`, whose
    state leaves out the user messages and actions of a form's happy path (here the latest message
    stays "xem tài liệu"): Rasa's copy replays every event, and so must the patched one."""
    from rasa.shared.core.trackers import Dialogue

    events = conversation(
        [
            UserUttered("xem tài liệu", {"name": "view_documents"}),
            ActionExecuted("verification_form"),
            ActiveLoop("verification_form"),
            SlotSet("requested_slot", "verify_channel"),
            BotUttered("Anh/chị nhận mã qua đâu ạ?"),
            ActionExecuted(LISTEN),
            UserUttered("sms", {"name": "inform"}),
            SlotSet("verify_channel", "sms"),
            ActionExecuted("verification_form"),
            SlotSet("requested_slot", "verify_otp"),
            BotUttered("Mã đã gửi ạ"),
            ActionExecuted(LISTEN),
        ]
    )
    loaded = DialogueStateTracker("s", domain.slots)
    loaded.recreate_from_dialogue(Dialogue("s", events))
    assert loaded.latest_message is not None and loaded.latest_message.text == "xem tài liệu"
    assert tracker_copies._copy_state(loaded, KINDS, None) is None  # not the state of a replay
    got, want = loaded.copy(), replay_copy(loaded)
    assert_same(got, want, loaded)
    assert got.latest_message is not None and got.latest_message.text == "sms"
    straight = DialogueStateTracker.from_events("s", events, domain.slots)
    assert tracker_copies._copy_state(straight, KINDS, None) is not None  # the same events, in order
