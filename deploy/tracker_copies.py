"""Copies of a conversation's tracker without replaying its events (a Rasa 3.6 patch).

Rasa copies the tracker before it runs each action (`MessageProcessor._run_action`: `tracker.copy()`,
so that a rejected action's events can be dropped), and a form builds two more trackers for each
run (`FormAction._temporary_tracker`: the same events plus the form's own). Each of them starts
from the domain's slots reset to their initial values and applies every event of the conversation
again (`travel_back_in_time`, `from_events`). With the windowed tracker store that is about a
hundred events per copy and four to six copies per turn.

A tracker's state is what its events made of it, so when every event only sets state (the types in
`STATE_EVENTS`, whose `apply_to` is pinned below), the copy can take the state as it is: the same
events in a new deque, a copy of each slot (its value and whether it was set), the same latest
message, bot utterance and followup action, a new dict of the latest action and a new active-loop
record (Rasa changes those two in place). What replaying shares with the original (the event
objects, the latest message the events point to, the trigger message of the active loop) is
shared here too. Anything else takes Rasa's own path: a subclass, a tracker without a slot
dictionary of its own, an event of another type (a reverted utterance, an exported story...),
a full event history (`max_event_history`: the state may come from events no longer there), a
latest message that is not one of the tracker's events while events that change it in place are
(an empty message made by a reset, then changed), and for a form's temporary tracker a restart in
the conversation or slots that were not copied from this domain's; and a tracker whose latest
message, bot utterance or action is not what a replay in order sets: Rasa's in-memory, Redis and
Mongo stores load trackers with `recreate_from_dialogue`, whose `applied_events()` leaves out the
user messages and actions of a form's happy path (the windowed and SQL stores replay in order).

tests/deploy/test_tracker_copies.py compares every attribute of both kinds of copy on the
conversations of the project's stories and on made-up event sequences.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploy.rasa_patches import Patch
from deploy.rasa_speedups import copies_as_plain_object
from deploy.source_pins import pins, replace

# Events whose `apply_to` only sets tracker state from the event itself (pinned below).
STATE_EVENTS = (
    "UserUttered",
    "BotUttered",
    "SlotSet",
    "ActionExecuted",
    "ActiveLoop",
    "LoopInterrupted",
    "ActionExecutionRejected",
    "FollowupAction",
    "SessionStarted",
    "Restarted",
    "AllSlotsReset",
    "DefinePrevUserUtteredFeaturization",
    "EntitiesAdded",
    "ConversationPaused",
    "ConversationResumed",
)


@dataclass(frozen=True)
class _EventKinds:
    state: frozenset[type]  # the classes of STATE_EVENTS
    change_message: frozenset[type]  # those that change the latest message in place
    restarted: type
    reset: frozenset[type]  # events after which a replay starts from an empty message and action
    user: type
    bot: type
    action: type
    copy_slot: Callable[[Any], Any]


def event_kinds() -> _EventKinds:
    from rasa.shared.core import events

    return _EventKinds(
        frozenset(getattr(events, name) for name in STATE_EVENTS),
        frozenset((events.EntitiesAdded, events.DefinePrevUserUtteredFeaturization)),
        events.Restarted,
        frozenset((events.Restarted, events.SessionStarted)),
        events.UserUttered,
        events.BotUttered,
        events.ActionExecuted,
        _slot_copier(),
    )


def _slot_copier() -> Callable[[Any], Any]:
    """`copy.copy` of a slot without its dispatch: for the 35 slots of each copy, a new instance
    with the same `__dict__` when the class copies as a plain object (as Slot.__copy__ does)."""
    from rasa.shared.core.slots import Slot

    plain: dict[type, bool] = {}

    def copy_slot(slot: Any) -> Any:
        cls = type(slot)
        verdict = plain.get(cls)
        if verdict is None:
            # A class's own __copy__ (not the one rasa_speedups gives Slot) keeps copy.copy's path.
            verdict = plain[cls] = copies_as_plain_object(cls) and getattr(cls, "__copy__", None) in (
                None,
                getattr(Slot, "__copy__", None),
            )
        if not verdict:
            return copy.copy(slot)
        new = object.__new__(cls)
        new.__dict__.update(slot.__dict__)
        return new

    return copy_slot


def _copy_state(
    tracker: Any, kinds: _EventKinds, max_event_history: Any, no_restart: bool = False
) -> Any | None:
    """A tracker in `tracker`'s state with its events (a deque of at most `max_event_history`),
    or None when that state cannot be taken as it is (the caller replays instead; with `no_restart`
    also when the conversation was restarted)."""
    from rasa.shared.core.events import BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    if type(tracker) is not DialogueStateTracker or type(tracker.slots) is not dict:
        return None
    limit = tracker.events.maxlen
    if limit is not None and len(tracker.events) >= limit:
        return None  # events may have fallen out of the history: a replay has only those left
    # What a replay of the events in order sets (after the last reset): a tracker loaded through
    # `recreate_from_dialogue` (Rasa's in-memory, Redis, Mongo stores) has the state of
    # `applied_events()`, which leaves out the user messages and actions of a form's happy path.
    last_user = last_bot = last_action = None
    changes_message = False
    for event in tracker.events:
        kind = type(event)
        if kind not in kinds.state:
            return None
        if kind is kinds.user:
            last_user = event
        elif kind is kinds.action:
            last_action = event
        elif kind is kinds.bot:
            last_bot = event
        elif kind in kinds.change_message:
            changes_message = True
        elif kind in kinds.reset:
            if no_restart and kind is kinds.restarted:
                return None
            last_user = last_bot = last_action = None
    message, utterance, action = tracker.latest_message, tracker.latest_bot_utterance, tracker.latest_action
    if last_user is not None:
        if message is not last_user:
            return None
    elif changes_message or any(message is e for e in tracker.events):
        return None  # the empty message of a reset, perhaps changed by events since
    else:
        message = UserUttered.empty()  # a replay's reset makes a new empty one
    if last_bot is not None:
        if utterance is not last_bot:
            return None
    else:
        utterance = BotUttered.empty()
    if last_action is not None:
        if not action or (action.get("action_name"), action.get("action_text")) != (
            last_action.action_name,
            last_action.action_text,
        ):
            return None
    elif action:
        return None
    new = object.__new__(DialogueStateTracker)
    new._max_event_history = max_event_history
    new.events = deque(tracker.events, max_event_history)
    new.sender_id = tracker.sender_id
    new.slots = {name: kinds.copy_slot(slot) for name, slot in tracker.slots.items()}
    new.sender_source = None
    new.is_rule_tracker = tracker.is_rule_tracker
    new._paused = tracker._paused
    new.followup_action = tracker.followup_action
    new.latest_action = dict(action) if action is not None else None
    new.latest_message = message
    new.latest_bot_utterance = utterance
    loop = tracker.active_loop
    new.active_loop = copy.copy(loop) if loop is not None else None
    new.model_id = None
    new.assistant_id = None
    return new


def _same_slots(tracker: Any, domain: Any) -> bool:
    """True when the tracker's slots are copies of this domain's (a copy shares its mappings list),
    so that a copy of them equals new slots from the domain with the events applied."""
    slots = domain.slots
    if len(tracker.slots) != len(slots):
        return False
    own = tracker.slots
    for slot in slots:
        mine = own.get(slot.name)
        if mine is None or type(mine) is not type(slot) or mine.mappings is not slot.mappings:
            return False
    return True


def _copy_without_replay() -> None:
    from rasa.core.actions.forms import FormAction
    from rasa.shared.constants import DEFAULT_SENDER_ID
    from rasa.shared.core import events
    from rasa.shared.core.constants import REQUESTED_SLOT
    from rasa.shared.core.trackers import DialogueStateTracker

    kinds = event_kinds()
    replay_copy = DialogueStateTracker.copy
    replay_temporary = FormAction._temporary_tracker

    def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
        new = _copy_state(self, kinds, self._max_event_history)
        if new is None:
            return replay_copy(self)
        new.sender_id = self.sender_id or DEFAULT_SENDER_ID  # as init_copy names it
        return new  # type: ignore[no-any-return]

    def temporary_tracker(
        self: FormAction, current_tracker: DialogueStateTracker, additional_events: list[Any], domain: Any
    ) -> DialogueStateTracker:
        # from_events: no history limit, not a rule tracker, the domain's slots, events after the
        # latest restart (all of them when there is none).
        new = None
        if _same_slots(current_tracker, domain):
            new = _copy_state(current_tracker, kinds, None, no_restart=True)
        if new is None:
            return replay_temporary(self, current_tracker, additional_events, domain)  # type: ignore[no-any-return]
        new.is_rule_tracker = False
        for event in [
            events.SlotSet(REQUESTED_SLOT, self.get_slot_to_fill(current_tracker)),
            events.ActionExecuted(self.name()),
            *additional_events,
        ]:
            new.update(event)
        return new  # type: ignore[no-any-return]

    replace(DialogueStateTracker, "copy", copy_tracker)
    replace(FormAction, "_temporary_tracker", temporary_tracker)


# As written for Rasa 3.6.21: the two functions replaced, how a replay builds a tracker, and what
# the state events do to one (tests/deploy/test_rasa_patches.py).
PATCHES = (
    Patch(
        "tracker_copies.copy_without_replay",
        _copy_without_replay,
        pins(
            (
                "rasa.shared.core.trackers:DialogueStateTracker.copy",
                "dfa48dca9f355ad1b42c625bc6f6370bafe83514ed17a77904ed64c67bf07285",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.travel_back_in_time",
                "09d16f28f007492f653b504cf2b6064dc453444c524799378609a85b04efd632",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.init_copy",
                "429fcd2243b9e0e1a6e8ffc3057a4f2fb4ecbb677055c644129bc65b6cd32b75",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.__init__",
                "8f39eb22462aa62b140d9da1f6db986cbc76383d8f7cc4e3dc7664fa7d84cb2d",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.from_events",
                "820a9cbb7dd5ce34a71b4301469f81f00754683952fd7b306f46ea46a400eb62",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.update",
                "b55e6b1c724fa6e916399f81ea51dd5600ad6702f0b172923a83ca84bc23c668",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.idx_after_latest_restart",
                "2d76399d37f8214d442dc634e60d306fb07ea978d3c2b50e30560247bff0ef0e",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.events_after_latest_restart",
                "8d0c1c5a15654eb41337b88aa438311e818aa97ae79ef86855808026776e09f6",
            ),
            (
                "rasa.core.actions.forms:FormAction._temporary_tracker",
                "381bc4b6e07fc205a4189558635d11392464a81d89499188542246f8376d8ee7",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker._reset",
                "190858eaf560a0c0a86f45dca86498f8a9fada57ddb6c7dd1e68648c9779e103",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker._reset_slots",
                "684656f977ba992830ff8abf147a7ad6de850ccac15249e7daeb6d87ab5cb058",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker._set_slot",
                "c3c88baddc3c5ea6c37900585f73c4485426770cea859f0c9e07d236795c1d7f",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.set_latest_action",
                "1d9d538f40ff5cc08bc1b386685aae05e76738d7f0772ae2ab4568838655b697",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.change_loop_to",
                "d7ad788e9750bae49815c1450839ada3452f5193d4e25fe6418160432c0b8d81",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.interrupt_loop",
                "d0a0409eb7a64abb43244c9263cf54a6cae9eddd24f2cc68cee0e6e71be69c19",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.reject_action",
                "d650eedddd2ab3570107169a8a1f26bad1656006a48e800e80843dba09e78bfa",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.trigger_followup_action",
                "312ce0b846bfafa7da113dd53d48106a01c6d941ebff6d10748596faee045600",
            ),
            (
                "rasa.shared.core.trackers:DialogueStateTracker.clear_followup_action",
                "7e7f684fcc7b1a130ff9c36fa627de3c452b71124f0bb988cd66d0cdfa507e7e",
            ),
            (
                "rasa.shared.core.events:UserUttered.apply_to",
                "617d53d3802952b7726878c3a4fece410c19bf4fbabb6a5115db8f1ffc646d0e",
            ),
            (
                "rasa.shared.core.events:BotUttered.apply_to",
                "2568769ad3acbb8ee26fa39e992cc21f9f3144116da75b3cf40bfbe4d754c1eb",
            ),
            (
                "rasa.shared.core.events:SlotSet.apply_to",
                "6de252a6d862ee478f9109b43fff24dc228af1fa0d4f21031fa9fcd7f142dcce",
            ),
            (
                "rasa.shared.core.events:ActionExecuted.apply_to",
                "c12dc00965af1844232bba17101ddc78e505682cd1180b99cd4e2cdf5ceb7445",
            ),
            (
                "rasa.shared.core.events:ActiveLoop.apply_to",
                "b2d976f828fc2fd9942546522d963026a24210b0310537a7d0212cc0c3eb1f3c",
            ),
            (
                "rasa.shared.core.events:LoopInterrupted.apply_to",
                "5facda1d30ddd231168aaa284d78f100239d5a6c8fffe956692145f83c9d059f",
            ),
            (
                "rasa.shared.core.events:ActionExecutionRejected.apply_to",
                "26fa7feb9672866162cf7f57646d3e71706ed57be931958a79cc8270ffaf2f52",
            ),
            (
                "rasa.shared.core.events:FollowupAction.apply_to",
                "9c670b45b765b0e047850543a95c6a459998c13b7c10b332ab81d89337993d97",
            ),
            (
                "rasa.shared.core.events:SessionStarted.apply_to",
                "3194704944b4f94556596cd7e9c21dbca61c23da600d87c501084bcd6f4a120b",
            ),
            (
                "rasa.shared.core.events:Restarted.apply_to",
                "ec4d9c43054a93035522632be669efa98038ec2d178638c0c4c550afe1078829",
            ),
            (
                "rasa.shared.core.events:AllSlotsReset.apply_to",
                "b1d408d40aefe929afd00a14c4250635be909b3f86e2345330f9e08cc3627b0b",
            ),
            (
                "rasa.shared.core.events:DefinePrevUserUtteredFeaturization.apply_to",
                "260e4a37a1056d9d2a40dd0b02a4117baddc23b1cf019a6a213c5e6b26bf8b67",
            ),
            (
                "rasa.shared.core.events:EntitiesAdded.apply_to",
                "b4d7905cab82faad1182ec1321e64249f9955d197c5d250cbfa97cfc08ac9ace",
            ),
            (
                "rasa.shared.core.events:ConversationPaused.apply_to",
                "0a7da5217ebc26014431503f4df410790e25126928edce576dfcc79a6ce4a7c5",
            ),
            (
                "rasa.shared.core.events:ConversationResumed.apply_to",
                "a2e52636e3448eb73be913253515a2aa86816412c7dfe7c89d2b6b52c4bdcd19",
            ),
        ),
    ),
)
